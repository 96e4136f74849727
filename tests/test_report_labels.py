"""Labels of nearby points do not overlap: the defense frontier's `none`, `l2` and `round:2`, and the placement
itself on a crowded cluster."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
from matplotlib.text import Text

from memberscope.report.labels import place_labels


def _boxes(fig, texts):
    renderer = fig.canvas.get_renderer()
    for t in texts:
        t.update_positions(renderer)
    return [Text.get_window_extent(t, renderer) for t in texts]  # the text alone, not its leader line


def _assert_apart(boxes):
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            w = min(a.x1, b.x1) - max(a.x0, b.x0)
            h = min(a.y1, b.y1) - max(a.y0, b.y0)
            assert w <= 0 or h <= 0, (a, b)


def _metrics(tpr, lo, hi):
    return {"tpr_at_fpr": {"0.01": tpr}, "tpr_at_fpr_ci": {"0.01": [lo, hi]}}


def _defend_results(defenses):
    entries = {
        name: {"kind": kind, "test_accuracy": acc, "strongest_attack": "loss", "attacks": {"loss": _metrics(*tpr)}}
        for name, kind, acc, tpr in defenses
    }
    return SimpleNamespace(
        sections={"recommendation": {"budget": {"fpr": 0.01, "max_tpr": 0.05}}, "defenses": entries},
        game=SimpleNamespace(n_members=500, n_nonmembers=500),
        dataset=SimpleNamespace(name="digits"),
    )


def test_the_frontier_labels_of_close_defenses_do_not_overlap():
    from memberscope.defenses.evaluate import frontier_figure

    # As in the issue: no defense, L2 and rounding to 2 decimals leak and score about the same.
    results = _defend_results([
        ("none", "training", 0.912, (0.130, 0.09, 0.17)),
        ("l2", "training", 0.910, (0.128, 0.09, 0.17)),
        ("round:2", "output", 0.912, (0.126, 0.09, 0.17)),
        ("dp-sgd:eps=8:epochs=10", "training", 0.85, (0.012, 0.004, 0.03)),
    ])  # fmt: skip
    fig = frontier_figure(results)
    try:
        texts = [t for t in fig.axes[0].texts if t.get_text() in ("none", "l2", "round:2", "dp-sgd:eps=8")]
        assert sorted(t.get_text() for t in texts) == ["dp-sgd:eps=8", "l2", "none", "round:2"]
        _assert_apart(_boxes(fig, texts))
    finally:
        plt.close(fig)


def test_the_html_report_frontier_labels_of_close_defenses_do_not_overlap():
    from report_fixtures import metrics

    from memberscope.report.html import _frontier_figure
    from memberscope.report.model import build_report
    from memberscope.results import Results

    close = {"loss": metrics(1.0)}  # one attack: the three defenses leak the same
    defenses = {
        name: {"test_accuracy": acc, "epsilon": None, "delta": None, "attacks": close}
        for name, acc in (("none", 0.912), ("l2", 0.911), ("round:2", 0.912))
    }
    model = build_report(Results.from_dict({"kind": "defend", "defenses": defenses}))
    fig = _frontier_figure(model)
    try:
        texts = fig.axes[0].texts
        assert sorted(t.get_text() for t in texts) == ["l2", "none", "round:2"]
        _assert_apart(_boxes(fig, texts))
    finally:
        plt.close(fig)


@pytest.mark.parametrize("n", [2, 5, 9])
def test_labels_of_a_tight_cluster_are_placed_apart_with_leader_lines(n):
    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        points = [(1.0 + 0.001 * i, 1.0 + 0.001 * (i % 3)) for i in range(n)]
        ax.plot(*zip(*points, strict=True), "o")
        ax.set_xlim(0, 2)
        ax.set_ylim(0, 2)
        fig.tight_layout()
        labels = [f"defense-{i}" for i in range(n)]
        annotations = place_labels(ax, points, labels)
        assert [a.get_text() for a in annotations] == labels
        _assert_apart(_boxes(fig, annotations))
        if n > 4:  # more labels than fit at the marker's corners: some moved out, each with a line back
            assert any(a.arrow_patch is not None for a in annotations)
    finally:
        plt.close(fig)


def test_points_and_labels_must_match():
    fig, ax = plt.subplots()
    try:
        with pytest.raises(ValueError, match="2 points, 1 labels"):
            place_labels(ax, [(0, 0), (1, 1)], ["a"])
    finally:
        plt.close(fig)
