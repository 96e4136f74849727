"""Label-only membership inference (Choquette-Choo et al., 2021, "Label-Only Membership Inference Attacks").

A model's predicted label is more robust around its training records than around unseen ones, so
querying perturbed copies of a record and counting how many keep the true label separates members
from non-members even when the API returns nothing but a label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError, QueryBudgetExceededError
from memberscope.targets import Target

__all__ = ["DEFAULT_SCALES", "NOISES", "LabelOnlyAttack"]

NOISES = ("auto", "gaussian", "bit-flip", "flip-shift")
DEFAULT_SCALES = {"gaussian": 0.5, "bit-flip": 0.05, "flip-shift": 0.5}


def _is_frame(X: Any) -> bool:
    return hasattr(X, "iloc") and hasattr(X, "columns")


def _column_kinds(frame: Any) -> dict[Any, tuple[str, Any]]:
    """Per column: ``("number", std)``, ``("bool", None)`` or ``("value", the observed values)``."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    kinds: dict[Any, tuple[str, Any]] = {}
    for column in frame.columns:
        values = frame[column]
        if is_bool_dtype(values):
            kinds[column] = ("bool", None)
        elif is_numeric_dtype(values):
            std = float(values.astype(float).std())
            kinds[column] = ("number", std if np.isfinite(std) and std > 0 else 1e-12)
        else:
            kinds[column] = ("value", values.dropna().to_numpy(dtype=object))
    return kinds


def _flip_shift_set(max_shift: int) -> list[tuple[bool, int, int]]:
    """Every (horizontal flip, dy, dx) with shifts in ``[-max_shift, max_shift]``, without the identity."""
    out = []
    for flip in (False, True):
        for dy in range(-max_shift, max_shift + 1):
            for dx in range(-max_shift, max_shift + 1):
                if flip or dy or dx:
                    out.append((flip, dy, dx))
    return out


def _shift(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shift ``(..., h, w)`` images by ``dy, dx`` pixels, filling the uncovered border with zeros."""
    out = np.zeros_like(images)
    h, w = images.shape[-2:]
    src_y = slice(max(0, -dy), h - max(0, dy))
    dst_y = slice(max(0, dy), h - max(0, -dy))
    src_x = slice(max(0, -dx), w - max(0, dx))
    dst_x = slice(max(0, dx), w - max(0, -dx))
    out[..., dst_y, dst_x] = images[..., src_y, src_x]
    return out


class LabelOnlyAttack:
    """Score = fraction of perturbed copies of a record (plus the record itself) predicted as its true label.

    Usage::

        attack = LabelOnlyAttack(n_queries=16, noise_scale=0.5, seed=0).fit(X_population)
        scores = attack.score(target, X, y)   # (n,), higher = more likely member

    ``target`` is any :class:`~memberscope.targets.Target` (an HTTP endpoint, a local model);
    only the arg-max of each answer is used, so label-only, top-k, rounded and full answers all work.
    Each record costs ``1 + n_queries`` queries; with a query budget smaller than that, ``n_queries``
    shrinks to what the budget allows (``n_queries_used_`` says how many) and the call fails only if
    not even one query per record is left.

    Parameters
    ----------
    n_queries : int
        Perturbed copies per record.
    noise : {"auto", "gaussian", "bit-flip", "flip-shift"}
        ``gaussian``: add N(0, (noise_scale · std_j)²) to feature j, std from :meth:`fit`'s records
        (the records themselves if not fitted). ``bit-flip``: for 0/1 features, flip each with
        probability ``noise_scale``. ``flip-shift``: for images ``(n, c, h, w)``, horizontal flips and
        shifts by up to ``max_shift`` pixels (the paper's augmentations), then Gaussian noise for
        queries beyond those. ``auto``: flip-shift for 4-D records, bit-flip for 0/1 records, else gaussian.
    noise_scale : float, optional
        See ``noise``; default :data:`DEFAULT_SCALES` of the resolved noise (0.05 for bit flips, 0.5
        feature standard deviations otherwise); :meth:`calibrate` chooses it on shadow models.
    max_shift : int
        Largest shift of ``flip-shift``.
    seed : int
        Seed of the perturbations: the same seed gives the same scores.
    """

    name = "label-only"

    def __init__(
        self,
        *,
        n_queries: int = 16,
        noise: str = "auto",
        noise_scale: float | None = None,
        max_shift: int = 1,
        seed: int = 0,
    ):
        problems = []
        if int(n_queries) != n_queries or n_queries < 0:
            problems.append(f"n_queries must be an integer >= 0; got {n_queries!r}")
        if noise not in NOISES:
            problems.append(f"noise {noise!r} is not one of {NOISES}")
        if noise_scale is not None and (not np.isfinite(noise_scale) or noise_scale < 0):
            problems.append(f"noise_scale must be a finite number >= 0; got {noise_scale!r}")
        if int(max_shift) != max_shift or max_shift < 0:
            problems.append(f"max_shift must be an integer >= 0; got {max_shift!r}")
        if problems:
            raise InvalidInputError("invalid label-only attack: " + "; ".join(problems))
        self.n_queries, self.noise = int(n_queries), noise
        self.noise_scale = None if noise_scale is None else float(noise_scale)
        self.max_shift, self.seed = int(max_shift), int(seed)
        self.feature_std_: np.ndarray | None = None
        self.n_queries_used_: int | None = None

    def fit(self, X_reference: Any) -> LabelOnlyAttack:
        """Learn each feature's spread from records the attacker owns (population or shadow data).

        For a table (a pandas DataFrame with text, categorical, boolean and numeric columns), each column's kind:
        numbers get Gaussian noise of ``noise_scale`` standard deviations (a missing value stays missing), booleans
        flip with probability ``noise_scale / 5``, and any other column takes, with probability ``noise_scale /
        2.5``, a value drawn from the reference records' values of that column (0.5 standard deviations and a
        20% redraw rate by default).
        """
        if _is_frame(X_reference):
            self.columns_ = _column_kinds(X_reference)
            self.feature_std_ = np.zeros(0)
            self._binary = False
            return self
        X_reference = np.asarray(X_reference, dtype=np.float64)
        self.feature_std_ = X_reference.std(axis=0) + 1e-12
        self._binary = bool(np.isin(X_reference, (0.0, 1.0)).all())
        return self

    def resolved_noise(self, X: np.ndarray) -> str:
        """The perturbation ``noise="auto"`` stands for on records ``X``."""
        if self.noise != "auto":
            return self.noise
        if X.ndim == 4:
            return "flip-shift"
        binary = self._binary if self.feature_std_ is not None else bool(np.isin(X, (0.0, 1.0)).all())
        return "bit-flip" if binary else "gaussian"

    def perturb(self, X: Any, n_queries: int | None = None) -> Any:
        """Perturbed copies of shape ``(n, n_queries, ...)`` (for a table: a DataFrame of ``n * n_queries`` rows,
        record by record); deterministic in ``seed``."""
        if _is_frame(X):
            return self._perturb_table(X, self.n_queries if n_queries is None else int(n_queries))
        X = np.asarray(X, dtype=np.float64)
        q = self.n_queries if n_queries is None else int(n_queries)
        rng = np.random.default_rng(self.seed)
        noise = self.resolved_noise(X)
        scale = DEFAULT_SCALES[noise] if self.noise_scale is None else self.noise_scale
        std = self.feature_std_ if self.feature_std_ is not None else X.std(axis=0) + 1e-12
        if noise == "bit-flip":
            flips = rng.random((len(X), q, *X.shape[1:])) < scale
            return np.where(flips, 1.0 - X[:, None], X[:, None])
        gaussian = X[:, None] + rng.normal(size=(len(X), q, *X.shape[1:])) * (scale * std)
        if noise == "gaussian":
            return gaussian
        if X.ndim != 4:
            raise InvalidInputError(f"noise 'flip-shift' needs images of shape (n, c, h, w); got shape {X.shape}")
        augs = _flip_shift_set(self.max_shift)
        order = rng.permutation(len(augs))
        out = gaussian
        for j in range(min(q, len(augs))):
            flip, dy, dx = augs[order[j]]
            images = X[..., ::-1] if flip else X
            out[:, j] = _shift(images, dy, dx)
        return out

    def _perturb_table(self, X: Any, q: int) -> Any:
        import pandas as pd

        kinds = getattr(self, "columns_", None) or _column_kinds(X)
        scale = DEFAULT_SCALES["gaussian"] if self.noise_scale is None else self.noise_scale
        rng = np.random.default_rng(self.seed)
        rows = np.repeat(np.arange(len(X)), q)
        out = X.iloc[rows].reset_index(drop=True).copy()
        for column, (kind, spread) in kinds.items():
            values = out[column]
            if kind == "number":
                noise = rng.normal(size=len(out)) * (scale * spread)
                out[column] = values.astype(float) + noise
            elif kind == "bool":
                flip = rng.random(len(out)) < scale / 5
                out[column] = np.where(flip, ~values.astype(bool), values.astype(bool))
            else:
                redraw = rng.random(len(out)) < scale / 2.5
                drawn = spread[rng.integers(0, len(spread), size=len(out))] if len(spread) else values.to_numpy()
                replaced = values.astype(object).where(~redraw, pd.Series(drawn, index=values.index, dtype=object))
                out[column] = (
                    replaced.astype(values.dtype) if isinstance(values.dtype, pd.CategoricalDtype) else replaced
                )
        return out

    def queries_needed(self, n_records: int) -> int:
        return n_records * (1 + self.n_queries)

    def score(self, target: Target, X: Any, y: np.ndarray) -> np.ndarray:
        """Membership scores ``(n,)`` in [0, 1]: the share of the ``1 + q`` queries answered with label ``y``."""
        if _is_frame(X):
            return self._score_table(target, X, np.asarray(y))
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise InvalidInputError(f"labels y must have shape ({len(X)},) to match X; got {y.shape}")
        q = self._queries_within_budget(target, len(X))
        self.n_queries_used_ = q
        copies = self.perturb(X, q) if q else np.zeros((len(X), 0, *X.shape[1:]))
        batch = np.concatenate([X[:, None], copies], axis=1).reshape(len(X) * (1 + q), *X.shape[1:])
        observed = target.query(batch)
        labels = np.nanargmax(np.where(np.isnan(observed), -np.inf, observed), axis=1).reshape(len(X), 1 + q)
        return (labels == y[:, None]).mean(axis=1)

    def _score_table(self, target: Target, X: Any, y: np.ndarray) -> np.ndarray:
        import pandas as pd

        q = self._queries_within_budget(target, len(X))
        self.n_queries_used_ = q
        copies = self._perturb_table(X, q) if q else X.iloc[:0]
        originals = X.reset_index(drop=True)
        # Record i's original then its q copies, in one batch.
        n = len(X)
        order = np.column_stack([np.arange(n), n + np.arange(n * q).reshape(n, q)]).ravel()
        batch = pd.concat([originals, copies], ignore_index=True).iloc[order].reset_index(drop=True)
        observed = target.query(batch)
        labels = np.nanargmax(np.where(np.isnan(observed), -np.inf, observed), axis=1).reshape(len(X), 1 + q)
        return (labels == y[:, None]).mean(axis=1)

    def _queries_within_budget(self, target: Target, n: int) -> int:
        q = self.n_queries
        left = target.queries_left
        if left is not None:
            if left < n:
                raise QueryBudgetExceededError(
                    f"{target.description}: the label-only attack needs at least {n} queries (one per "
                    f"record); only {left} are left of the budget"
                )
            q = min(q, left // n - 1)
        return q

    def calibrate(
        self,
        shadows: Sequence[tuple[Target, np.ndarray, np.ndarray, np.ndarray]],
        *,
        grid: Sequence[float] | None = None,
        fpr: float | None = None,
    ) -> LabelOnlyAttack:
        """Set ``noise_scale`` to the grid value whose scores best separate members on shadow models.

        ``shadows`` holds ``(target, X, y, member)`` per shadow model (local models the attacker trained,
        so no query of the real target is spent). Chooses by mean AUC, or with ``fpr`` by mean TPR at that
        FPR (AUC breaking ties): scores take only ``1 + n_queries`` values, and a scale at which many
        non-members keep their label under every perturbation ties them with members at the top, which
        AUC barely notices but leaves no TPR at a low FPR. Records the grid in ``calibration_``.
        """
        from memberscope.metrics import roc_auc, roc_curve, tpr_at_fpr

        if not shadows:
            raise InvalidInputError("calibrate needs at least one shadow model")
        if grid is None:
            binary = self.resolved_noise(np.asarray(shadows[0][1])) == "bit-flip"
            grid = (0.02, 0.05, 0.1, 0.2, 0.3) if binary else (0.1, 0.25, 0.5, 1.0, 2.0)
        aucs: dict[float, float] = {}
        tprs: dict[float, float] = {}
        for scale in grid:
            self.noise_scale = float(scale)
            auc, tpr = [], []
            for target, X, y, member in shadows:
                member = np.asarray(member, bool)
                scores = self.score(target, X, y)
                auc.append(roc_auc(member, scores))
                if fpr is not None:
                    tpr.append(tpr_at_fpr(*roc_curve(member, scores)[:2], fpr))
            aucs[float(scale)] = float(np.mean(auc))
            tprs[float(scale)] = float(np.mean(tpr)) if tpr else 0.0
        self.noise_scale = max(aucs, key=lambda s: (tprs[s], aucs[s]))
        self.calibration_ = {
            "criterion": "auc" if fpr is None else f"tpr@{fpr:g}",
            "grid_auc": aucs,
            "grid_tpr": None if fpr is None else tprs,
            "chosen": self.noise_scale,
        }
        return self

    def params(self) -> dict[str, Any]:
        return {
            "n_queries": self.n_queries,
            "n_queries_used": self.n_queries_used_,
            "noise": self.noise,
            "noise_scale": self.noise_scale,
            "max_shift": self.max_shift,
            "seed": self.seed,
        }
