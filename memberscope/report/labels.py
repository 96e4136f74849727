"""Point labels that do not overlap: a greedy placement with leader lines, for matplotlib plots.

Each label is tried at candidate offsets around its point, nearest first (the four diagonal corners, then rings
further out), and takes the first whose box overlaps neither a label already placed nor a point of the plot and
stays inside the axes; a label moved away from its point gets a thin leader line back to it. Greedy placement is
what small labelled scatter plots need (a handful of points); it is not an optimal map-labelling solver.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["place_labels"]

#: Offsets tried first (points): right-up, right-down, left-up, left-down of the marker.
_NEAR = ((5, 4), (5, -12), (-5, 4), (-5, -12))
#: Rings further out: radius (points) and directions per ring.
_RADII = (16, 26, 38, 52, 68, 86)
_DIRECTIONS = 16
#: Half the side of the square kept clear around each plotted point (points).
_MARKER_HALF = 4.0


def _candidates() -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = list(_NEAR)
    for radius in _RADII:
        for k in range(_DIRECTIONS):
            angle = 2 * math.pi * k / _DIRECTIONS + math.pi / 4
            out.append((radius * math.cos(angle), radius * math.sin(angle)))
    return out


def place_labels(
    ax: Any,
    points: Sequence[tuple[float, float]],
    labels: Sequence[str],
    *,
    styles: Sequence[dict[str, Any]] | None = None,
    fontsize: float = 8,
) -> list[Any]:
    """Annotate ``points`` (data coordinates) with ``labels`` so that no two label boxes overlap.

    Call it once the axes' limits and the figure's layout are final (after ``tight_layout``): the boxes are
    measured in display space, which changes when the axes move.

    Parameters
    ----------
    ax : matplotlib ``Axes``.
    points : sequence of ``(x, y)``, shape (n, 2), in data coordinates.
    labels : sequence of str, shape (n,).
    styles : per label, extra ``ax.annotate`` keywords (``color``, ``fontsize``, ...); default none.
    fontsize : the labels' font size (points), unless a style sets another.

    Returns
    -------
    list of matplotlib ``Annotation``, shape (n,), in the order of ``labels``. A label that no candidate position
    keeps clear of the others and inside the axes (a very crowded plot) takes the position overlapping least.

    Raises
    ------
    ValueError
        When ``points``, ``labels`` and ``styles`` differ in length.
    """
    styles = list(styles) if styles is not None else [{} for _ in labels]
    if not len(points) == len(labels) == len(styles):
        raise ValueError(f"{len(points)} points, {len(labels)} labels and {len(styles)} styles: expected as many")
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    to_display = ax.transData.transform
    half = _MARKER_HALF * fig.dpi / 72.0  # points to pixels
    centres = [to_display(p) for p in points]
    markers = [_box(float(c[0]), float(c[1]), half) for c in centres]
    frame = ax.get_window_extent(renderer)
    inside = (frame.x0, frame.y0, frame.x1, frame.y1)
    placed: list[tuple[float, float, float, float]] = []
    annotations = []
    for i, ((x, y), label, style) in enumerate(zip(points, labels, styles, strict=True)):
        kw = {"fontsize": fontsize, "annotation_clip": False, **style}
        others = markers[:i] + markers[i + 1 :]
        best: tuple[float, tuple[float, float, float, float], tuple[float, float]] | None = None
        for dx, dy in _candidates():
            ann = _annotate(ax, label, (x, y), (dx, dy), kw)
            ext = ann.get_window_extent(renderer)  # no leader line yet: the text's box
            ann.remove()
            box = (ext.x0, ext.y0, ext.x1, ext.y1)
            score = sum(_area(box, b) for b in itertools.chain(placed, others))
            score += _area(box, box) - _area(box, inside)  # the part outside the axes
            if best is None or score < best[0]:
                best = (score, box, (dx, dy))
            if score == 0:
                break
        assert best is not None  # there is always a candidate
        _, box, offset = best
        if math.hypot(*offset) > max(math.hypot(*o) for o in _NEAR):  # moved away: a leader line back to its point
            kw["arrowprops"] = {"arrowstyle": "-", "color": "0.5", "lw": 0.6, "shrinkA": 1, "shrinkB": 3}
        placed.append(box)
        annotations.append(_annotate(ax, label, (x, y), offset, kw))
    return annotations


def _annotate(ax: Any, label: str, xy: tuple[float, float], offset: tuple[float, float], kw: dict[str, Any]) -> Any:
    dx, dy = offset
    return ax.annotate(
        label,
        xy,
        textcoords="offset points",
        xytext=offset,
        ha="left" if dx >= 0 else "right",
        va="bottom" if dy >= 0 else "top",
        **kw,
    )


def _box(cx: float, cy: float, half: float) -> tuple[float, float, float, float]:
    return (cx - half, cy - half, cx + half, cy + half)


def _area(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Overlap area of two boxes ``(x0, y0, x1, y1)`` (0 when they only touch or are apart)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0
