"""Data minimization: remove (or coarsen) the most exposed training records, retrain, and measure the "privacy onion".

Carlini et al. (NeurIPS 2022, "The Privacy Onion Effect") showed that removing the records an attack exposes
most makes *other* records newly vulnerable. This module ranks the target's training records

- by **vulnerability**: the score an audit's strongest attack gives them (higher = more exposed), or
- by **uniqueness**: the distance to the nearest training record of the same class (farther = more unique),

removes the top ``fraction`` of them from the data (target and reference models alike, so the attacker's models
match the new training set), optionally rounds every feature to a grid (``coarsen``), retrains, re-attacks, and
compares the leakage on three layers before and after: the removed records, their nearest same-class neighbours
among the remaining members, and everyone else.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = ["RANKINGS", "layer_metrics", "nearest_same_class", "rank_members", "uniqueness"]

RANKINGS = ("vulnerability", "uniqueness")


def _flat(X: np.ndarray) -> np.ndarray:
    return np.asarray(X, dtype=np.float64).reshape(len(X), -1)


def nearest_same_class(
    X: np.ndarray, y: np.ndarray, queries: np.ndarray, candidates: np.ndarray, k: int
) -> dict[int, np.ndarray]:
    """For each position in ``queries``, the ``k`` nearest positions in ``candidates`` with the same label
    (Euclidean on flattened features, never the query itself); ``{query: (<=k,) positions}``."""
    from sklearn.neighbors import NearestNeighbors

    flat = _flat(X)
    out: dict[int, np.ndarray] = {}
    for c in np.unique(y[queries]):
        pool = candidates[y[candidates] == c]
        qs = queries[y[queries] == c]
        if len(pool) == 0:
            out.update({int(q): np.zeros(0, dtype=np.int64) for q in qs})
            continue
        nn = NearestNeighbors(n_neighbors=min(k + 1, len(pool))).fit(flat[pool])
        _, idx = nn.kneighbors(flat[qs])
        for q, row in zip(qs, idx, strict=True):
            found = pool[row]
            out[int(q)] = found[found != q][:k]
    return out


def uniqueness(X: np.ndarray, y: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Distance from each record in ``positions`` to its nearest other same-class record in ``positions``;
    ``inf`` for the only record of its class."""
    flat = _flat(X)
    neighbours = nearest_same_class(X, y, positions, positions, 1)
    out = np.full(len(positions), np.inf)
    for i, p in enumerate(positions):
        n = neighbours[int(p)]
        if len(n):
            out[i] = float(np.linalg.norm(flat[p] - flat[n[0]]))
    return out


def rank_members(
    by: str, *, member: np.ndarray, scores: np.ndarray | None = None, X: np.ndarray | None = None, y=None
) -> np.ndarray:
    """Positions of the members (``member`` (n,) bool) from most to least exposed.

    ``by="vulnerability"`` sorts by ``scores`` (n,) of an attack, descending; ``by="uniqueness"`` by the distance
    to the nearest same-class member in ``X`` (n, ...) with labels ``y`` (n,), descending. Ties keep input order.
    """
    members = np.flatnonzero(member)
    if by == "vulnerability":
        if scores is None:
            raise InvalidInputError("ranking by vulnerability needs attack scores")
        key = np.asarray(scores, dtype=np.float64)[members]
    elif by == "uniqueness":
        if X is None or y is None:
            raise InvalidInputError("ranking by uniqueness needs the records and their labels")
        key = uniqueness(X, np.asarray(y), members)
    else:
        raise InvalidInputError(f"minimize: by={by!r} is not one of {RANKINGS}")
    return members[np.argsort(-key, kind="stable")]


def layer_metrics(member: np.ndarray, score: np.ndarray, layer: np.ndarray, **metric_kwargs) -> dict[str, Any] | None:
    """Metrics of ``score`` with only the members in ``layer`` (bool (n,)) against every non-member; None if empty."""
    from memberscope.metrics import evaluate

    rows = layer | ~member
    if not (layer & member).any():
        return None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate(member[rows], score[rows], **metric_kwargs).to_dict()


def split_params(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(minimization options, recipe options)`` of a ``minimize`` defense spec, with defaults and checks."""
    opts = {"fraction": 0.1, "by": "vulnerability", "neighbours": 5}
    recipe = {}
    for key, value in params.items():
        if key in opts:
            opts[key] = value
        else:
            recipe[key] = value
    if not (isinstance(opts["fraction"], int | float) and 0 < opts["fraction"] < 1):
        raise InvalidInputError(f"minimize: fraction must be in (0, 1); got {opts['fraction']!r}")
    if opts["by"] not in RANKINGS:
        raise InvalidInputError(f"minimize: by={opts['by']!r} is not one of {RANKINGS}")
    if not (isinstance(opts["neighbours"], int) and opts["neighbours"] >= 1):
        raise InvalidInputError(f"minimize: neighbours must be an integer >= 1; got {opts['neighbours']!r}")
    return opts, recipe


def removed_count(n_members: int, fraction: float) -> int:
    return max(1, math.ceil(fraction * n_members))
