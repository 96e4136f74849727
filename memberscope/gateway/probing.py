"""Probing detection: flag the query streams of membership-inference attacks, per key, tenant and address.

What the attacks send
---------------------
The label-only attack (Choquette-Choo et al., ICML 2021; :class:`memberscope.redteam.LabelOnlyAttack`)
asks for each target record ``x`` the record and ``n_queries`` perturbed copies: ``x + σ·std·ε`` with
``σ`` from 0.1 to 2.0 feature standard deviations, bit flips of binary features, or flips and shifts of
images; boundary-distance variants walk a line towards the decision boundary. The copies may come one
record at a time, round-robin over many records, from several keys of one tenant or address, and through
several gateway workers. Exact repeats gain nothing on a deterministic API (the answer is the same) but
do on a randomized one (averaging noisy outputs). The shadow-model attack (Shokri et al., 2017) asks each
target record **once**: its queries are distinct real records, exactly what a benign client sends, so no
query-stream detector can tell them apart; its defenses are the output policy and the rate limits.

The detector: stateful similarity detection, calibrated on a reference sample
-------------------------------------------------------------------------------
Like the stateful detectors of black-box attacks (Chen, Carlini & Wagner, "Stateful Detection of
Black-Box Adversarial Attacks", SPAI 2020; Li et al., "Blacklight", USENIX Security 2022), it keeps each
subject's recent queries (``history`` entries within ``window_seconds``) and compares every new query
with them; like PRADA (Juuti et al., EuroS&P 2019) it judges a stream by how its queries relate to each
other, not one query at a time. Every record is embedded on the principal axes of a **reference sample**
of typical records (the policy's ``probing.reference``; the gateway's first ``bootstrap`` distinct
records when none is given), and three tests, each calibrated on a held-out half of the reference to a
false-evidence rate ``alpha``, mark a query as *evidence*:

1. **near** (density ratio): the distance to its nearest earlier query of the subject, divided by the
   distance to its 3rd-nearest reference record, or the mean distance to its two nearest earlier queries
   divided by the mean distance to its 2nd- to 4th-nearest reference records, is below the reference's
   ``alpha / 2`` quantile (each). A perturbed copy lies much closer to its siblings than real records lie to
   each other *at that place*; skipping the nearest reference records keeps the test working when the probed
   record itself is in the reference. The reference calibrates histories of up to half its held-out half;
   longer ones (up to ``history``) get their cut-offs scaled by ``(look-back / history length)^(1/m)``, ``m``
   the data's intrinsic dimension estimated from how neighbour distances shrink (Levina & Bickel 2005).
2. **white** (noise shape): the difference to the nearest of the last (calibrated look-back) queries spreads
   its energy over the principal axes like white noise does, i.e. its share beyond the first ``s`` axes
   exceeds the reference's ``1 - alpha`` quantile for differences between neighbouring real records.
   Independent per-feature noise is white whatever its scale ``σ``, while real records differ along the
   data's few main axes. ``s`` is chosen among a few candidates (50% ... 99% of the variance) for its power
   against white noise (the share of white noise beyond ``s`` of ``k`` axes follows a Beta((k-s)/2, s/2) law);
   the test needs at least 150 held-out reference records and is off otherwise.
3. **off** (off-manifold): the query's energy outside the main axes (90% of the reference variance)
   exceeds the reference's ``1 - alpha`` quantile: large noise pushes copies off the data manifold.

Records are standardized with the reference's statistics, nearly constant features floored to 0.3 of the
median feature scale and values clipped at ±5 standard deviations (rare features would otherwise dominate).

A **scan statistic** over each subject's last ``scan_window`` distinct queries raises a
``perturbation-burst`` alert when at least ``scan_threshold`` of them are evidence: with a false-evidence
rate ``p`` per query, benign streams reach it with probability ``P(Binomial(scan_window, p) >=
scan_threshold)`` (about 1e-6 for ``p = 0.03`` at the defaults 10 of 32). Two more detectors:
``boundary`` when a ``boundary_fraction`` share of at least ``boundary_min`` recent distinct queries have
a top-2 probability margin below ``margin``; ``repeated-record`` when one record is asked
``repeat_threshold`` times **on a randomized tier** (exact repeats are no evidence on a deterministic tier,
so a dashboard polling one record raises nothing).

Subjects and shared state
-------------------------
Each query goes into the history of its key, of its key's tenant (``keys create --tenant``) and of its
source address, so the same record probed from several keys of one tenant or address adds up; such an
alert names the keys with at least two evidence queries in its window. A tenant's or address's history
that holds exactly one key's queries, all from there, is that key's history (a *twin*, judged once) until
another key or address shows up. The histories live in the policy's ``storage``
(:mod:`memberscope.gateway.history`): in process for ``memory://``, in Redis streams for ``redis://``,
where every worker reads the others' queries before judging its own, and one worker records each alert.

Measured on memberscope's own attacks and on benign streams of real records: ``benchmarks/gateway_probing.py``
and BENCHMARKS.md. What it cannot see: the shadow attack (above); an attacker who spreads copies over
unrelated keys and addresses; copies spaced wider than ``history`` queries or ``window_seconds``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.gateway.history import (
    EVIDENCE,
    FLAG_LOW_MARGIN,
    FLAG_NEAR,
    FLAG_OFF,
    FLAG_RANDOMIZED,
    FLAG_REPEAT,
    FLAG_WHITE,
    Columns,
    HistoryStore,
    HistoryView,
    MemoryHistoryStore,
    SubjectHistory,
    entry_dtype,
)
from memberscope.gateway.policy import ProbingConfig

__all__ = ["DETECTORS", "SCOPES", "Alert", "ProbeDetector", "ReferenceProfile", "Subject", "white_share_power"]

log = logging.getLogger("memberscope.gateway")

DETECTORS = ("perturbation-burst", "boundary", "repeated-record")
SCOPES = ("key", "tenant", "address")
#: Reference records used at most (a random subset beyond): half of them are searched for every query's
#: local scale.
MAX_REFERENCE = 2000
#: Calibration draws per test: each held-out reference record against several random histories.
CALIBRATION_SAMPLES = 4000
#: Held-out records the white test's calibration needs; with fewer, the tail of the benign shares is not
#: known well enough and the test is off.
MIN_WHITE_RECORDS = 150
#: Candidate splits of the white test, as shares of the reference variance on the axes before the split.
WHITE_SPLITS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
#: Flag of an entry stored before the profile existed (bootstrap): no coordinates.
FLAG_UNEMBEDDED = 32
#: Standardized values are clipped at ±CLIP: a rare feature's occasional huge z-score says nothing about probing.
CLIP = 5.0
#: Feature scales are at least this share of the median feature's standard deviation, so that nearly
#: constant features (a digit's corner pixels) do not dominate distances.
SCALE_FLOOR = 0.3


@dataclass(frozen=True)
class Subject:
    """Whose history a query joins: ``scope`` is ``key``, ``tenant`` or ``address``."""

    scope: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.scope}:{self.name}"


@dataclass
class Alert:
    """A detector's alert for one subject; ``at`` is the index, in the observed batch, of the query that
    raised it."""

    detector: str
    subject: Subject
    detail: dict[str, Any] = field(default_factory=dict)
    at: int = 0
    #: The keys whose queries make the evidence (for a tenant or address: possibly several).
    keys: list[str] = field(default_factory=list)


def white_share_power(k: int, s: int, cut: float) -> float:
    """P(share of a white-noise difference beyond the first ``s`` of ``k`` axes > ``cut``): Beta((k-s)/2, s/2)."""
    from scipy.stats import beta

    return float(beta.sf(cut, (k - s) / 2.0, s / 2.0))


def _sq_dists(A: np.ndarray, B: np.ndarray, b_norms: np.ndarray | None = None) -> np.ndarray:
    """Squared Euclidean distances ``(len(A), len(B))``, clipped at 0."""
    a2 = np.einsum("ij,ij->i", A, A)
    b2 = np.einsum("ij,ij->i", B, B) if b_norms is None else b_norms
    D = a2[:, None] + b2[None, :] - 2.0 * (A @ B.T)
    np.maximum(D, 0.0, out=D)
    return D


def _standardize(X: np.ndarray, keep: np.ndarray | None, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Records ``(n, d)`` in reference standard deviations, clipped at ±CLIP: the features ``keep`` selects
    (all when None), less their ``mean``, over their ``scale`` (both of shape ``(n_kept,)``)."""
    X = np.asarray(X, dtype=np.float64)
    Z = (X if keep is None else X[:, keep]) - mean
    Z /= scale
    np.clip(Z, -CLIP, CLIP, out=Z)
    return Z


def _embed_standardized(Z: np.ndarray, axes: np.ndarray, n_near: int) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates ``(n, k)`` of standardized records ``Z (n, d)`` on ``axes (k, d)``, and their residuals
    ``(n,)`` off the first ``n_near`` axes."""
    C = Z @ axes.T
    if len(Z) == 1:  # one record: two dot products beat two einsums
        head = C[0, :n_near]
        return C, np.array([max(float(Z[0] @ Z[0]) - float(head @ head), 0.0)])
    residual = np.einsum("ij,ij->i", Z, Z) - np.einsum("ij,ij->i", C[:, :n_near], C[:, :n_near])
    return C, np.maximum(residual, 0.0)


def _local_scale(coords: np.ndarray, ref_coords: np.ndarray, ref_norms: np.ndarray, n_near: int) -> np.ndarray:
    """Local scales ``(n, 2)`` of the reference around each embedded query ``coords (n, k)``: the distance to
    its 3rd-nearest reference record, and the mean distance to its 2nd- to 4th-nearest, on the first
    ``n_near`` axes (exact copies skipped; the nearest is skipped in case it is the very record probed).
    ``ref_coords`` is ``(m, n_near)``, ``ref_norms`` their squared norms ``(m,)``."""
    if len(coords) == 1:
        z = np.asarray(coords)[0]
        q = z[:n_near]
        d2 = ref_norms - 2.0 * (ref_coords @ q) + float(q @ q)
        if len(d2) >= 4:
            four = np.sort(np.partition(d2, 3)[:4])
            if four[0] > 1e-18:  # else an exact copy of a reference record: skip it, as the general path does
                near4 = np.sqrt(np.maximum(four, 0.0))
                return np.array([[near4[2], (near4[1] + near4[2] + near4[3]) / 3.0]])
    D = _sq_dists(np.asarray(coords)[:, :n_near], ref_coords, ref_norms)
    D[D <= 1e-18] = np.inf
    near4 = np.sqrt(np.sort(np.partition(D, min(3, D.shape[1] - 1), axis=1)[:, :4], axis=1))
    return np.column_stack([near4[:, 2], near4[:, 1:4].mean(axis=1)])


@dataclass(eq=False)
class ReferenceProfile:
    """What typical records look like: standardization, principal axes and the three tests' cut-offs.

    Fit with :meth:`fit` on a reference sample ``(n, d)``: half (``A``) gives the principal axes and the
    local-scale records, the other half (``B``), queried as one benign stream, calibrates each test to a
    false-evidence rate ``alpha``.

    Attributes
    ----------
    mean, scale : ndarray of shape (d,)
        Feature means and (floored) standard deviations of the reference.
    keep : ndarray of shape (d,), bool
        The features that are not constant in the reference (the others are dropped).
    axes : ndarray of shape (n_coords, n_kept)
        Principal axes of the standardized reference.
    n_coords : int
        Principal coordinates kept per query (``k``).
    n_near : int
        Leading axes for distances and the off-manifold residual (``near_variance`` of the variance).
    alpha : float
        False-evidence rate each test is calibrated to.
    n_reference : int
        Reference records used (at most :data:`MAX_REFERENCE`).
    ref_coords : ndarray of shape (n_reference // 2, n_near)
        Coordinates of the local-scale records (``A``); ``ref_norms`` ``(n_reference // 2,)`` their squared norms.
    lookback : int
        Calibrated look-back: the history length the near test's cut-offs hold for.
    intrinsic_dim : float
        The data's intrinsic dimension (Levina & Bickel 2005), in [1, 64]; scales the near cut-offs beyond
        ``lookback``.
    white_split : int or None
        ``s`` of the white test; None when no split has power against white noise (few features).
    white_power : float
        Power of the white test against white noise at ``white_split``; 0.0 when the test is off.
    near_cut, near2_cut, white_cut, residual_cut : float
        The tests' thresholds; ``white_cut`` is inf when the white test is off, ``residual_cut`` when the
        axes hold all the variance.
    profile_id : int
        16-bit id of this fit; histories compare queries embedded by the same profile only.
    """

    mean: np.ndarray
    scale: np.ndarray
    keep: np.ndarray
    axes: np.ndarray
    n_coords: int
    n_near: int
    alpha: float
    n_reference: int
    ref_coords: np.ndarray
    ref_norms: np.ndarray
    lookback: int
    intrinsic_dim: float
    near_cut: float
    near2_cut: float
    white_split: int | None
    white_cut: float
    white_power: float
    residual_cut: float
    profile_id: int
    # Standardization of the kept features, prepared once (the per-request path).
    _keep_cols: np.ndarray | None = field(init=False, repr=False)
    _kept_mean: np.ndarray = field(init=False, repr=False)
    _kept_scale: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._keep_cols = None if bool(self.keep.all()) else self.keep
        self._kept_mean, self._kept_scale = self.mean[self.keep], self.scale[self.keep]

    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        *,
        n_coords: int = 48,
        near_variance: float = 0.9,
        alpha: float = 0.01,
        history: int = 512,
        seed: int = 0,
    ) -> ReferenceProfile:
        """Fit on reference records ``X`` of shape ``(n, d)`` (``n >= 40``).

        Raises
        ------
        InvalidInputError
            Fewer than 40 records, or non-finite values.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) < 40 or not np.isfinite(X).all():
            raise InvalidInputError(
                f"the probing reference must be at least 40 finite records of shape (n, d); got shape {X.shape}"
            )
        rng = np.random.default_rng(seed)
        if len(X) > MAX_REFERENCE:
            X = X[rng.choice(len(X), MAX_REFERENCE, replace=False)]
        mean = X.mean(axis=0)
        std = X.std(axis=0)
        keep = std > 1e-9 * max(1.0, float(np.abs(X).max()))
        floor = SCALE_FLOOR * float(np.median(std[keep])) if keep.any() else 0.0
        scale = np.where(keep, np.maximum(std, floor), 1.0)
        order = rng.permutation(len(X))
        half = len(X) // 2
        keep_cols = None if bool(keep.all()) else keep
        A = _standardize(X[order[:half]], keep_cols, mean[keep], scale[keep])
        B = _standardize(X[order[half:]], keep_cols, mean[keep], scale[keep])
        _, S, Vt = np.linalg.svd(A - A.mean(axis=0), full_matrices=False)
        var = S**2
        k = min(int(n_coords), int((var > 1e-12 * var[0]).sum()), int(A.shape[1]))
        axes = Vt[:k]
        cum = np.cumsum(var) / var.sum()
        n_near = min(k, int(np.searchsorted(cum, near_variance)) + 1)
        ref_coords = np.ascontiguousarray((A @ axes.T)[:, :n_near])
        ref_norms = np.einsum("ij,ij->i", ref_coords, ref_coords)
        cB, rB = _embed_standardized(B, axes, n_near)
        full_residual = n_near < A.shape[1] and float(np.quantile(rB, 0.5)) > 1e-9
        residual_cut = float(np.quantile(rB, 1 - alpha)) if full_residual else np.inf
        # B as benign histories of the calibrated look-back's size: each record against the `lookback`
        # records that follow it in a random circular order of B (several orders), as a query against a
        # history; and against half as many, to see how neighbour distances shrink as histories grow.
        lookback = int(max(2, min(history, (len(B) - 1) // 2)))
        scale_b = _local_scale(cB, ref_coords, ref_norms, n_near)
        DB = _sq_dists(cB[:, :n_near], cB[:, :n_near])
        DB[DB <= 1e-18] = np.inf  # itself, and exact duplicates in the reference: repeats, not neighbours
        ratios, delta_parts, halves = [], [], []
        for _ in range(max(1, int(np.ceil(CALIBRATION_SAMPLES / len(B))))):
            perm = rng.permutation(len(B))
            window = perm[(np.arange(len(B))[:, None] + 1 + np.arange(lookback)[None, :]) % len(B)]
            d2 = DB[perm[:, None], window]
            j = np.argmin(d2, axis=1)
            two = np.sqrt(np.partition(d2, 1, axis=1)[:, :2])
            ok = np.isfinite(two[:, 0])
            ratios.append(np.column_stack([two[:, 0] / scale_b[perm, 0], two.mean(axis=1) / scale_b[perm, 1]])[ok])
            delta_parts.append((cB[perm] - cB[window[np.arange(len(B)), j]])[ok])
            halves.append(np.sqrt(d2[:, : max(1, lookback // 2)].min(axis=1))[ok] / scale_b[perm[ok], 0])
        r = np.concatenate(ratios)
        r[~np.isfinite(r)] = np.inf
        deltas = np.concatenate(delta_parts)
        near_cut = float(np.quantile(r[:, 0], alpha / 2)) if len(r) else 0.0
        near2_cut = float(np.quantile(r[:, 1], alpha / 2)) if len(r) else 0.0
        # Nearest-neighbour distances among L points shrink like L^(-1/m), m the data's intrinsic dimension
        # (Levina & Bickel 2005): m from the medians at L and L/2, so that histories longer than the
        # reference can calibrate (up to `history`) get cut-offs scaled by (lookback / L)^(1/m).
        at_half = np.concatenate(halves)
        at_half = at_half[np.isfinite(at_half)]
        full = r[np.isfinite(r[:, 0]), 0]
        m = np.log(2.0) / np.log(np.median(at_half) / np.median(full)) if len(at_half) and len(full) else np.inf
        intrinsic_dim = float(np.clip(m, 1.0, 64.0)) if np.isfinite(m) and m > 0 else 64.0
        white_power, white_split, white_cut = 0.0, None, np.inf
        if len(deltas) and k >= 3:
            E = deltas**2
            total = E.sum(axis=1)
            ok = total > 1e-18
            tails = np.cumsum(E[ok][:, ::-1], axis=1)[:, ::-1] / total[ok][:, None]  # tails[:, s] = share beyond s
            # A few candidate splits (where the axes reach 50% ... 99% of the variance): with few candidates,
            # choosing the one with the most power on the same records biases its threshold little.
            candidates = sorted({min(k - 1, max(1, int(np.searchsorted(cum, v)) + 1)) for v in WHITE_SPLITS})
            best: tuple[float, int | None, float] = (0.0, None, np.inf)
            for s in candidates:
                cut = float(np.quantile(tails[:, s], 1 - alpha))
                power = white_share_power(k, s, cut)
                if power > best[0]:
                    best = (power, s, cut)
            if best[0] >= 0.2 and len(B) >= MIN_WHITE_RECORDS:
                white_power, white_split, white_cut = best
        digest = hashlib.blake2b(np.ascontiguousarray(axes, dtype=np.float32).tobytes(), digest_size=2)
        return cls(
            mean=mean,
            scale=scale,
            keep=keep,
            axes=axes,
            n_coords=k,
            n_near=n_near,
            alpha=float(alpha),
            n_reference=len(X),
            ref_coords=ref_coords,
            ref_norms=ref_norms,
            lookback=lookback,
            intrinsic_dim=intrinsic_dim,
            near_cut=near_cut,
            near2_cut=near2_cut,
            white_split=white_split,
            white_cut=white_cut,
            white_power=white_power,
            residual_cut=residual_cut,
            profile_id=int.from_bytes(digest.digest(), "little"),
        )

    def standardize(self, X: np.ndarray) -> np.ndarray:
        """Records ``(n, d)`` in reference standard deviations, non-constant features only, clipped at ±CLIP."""
        return _standardize(X, self._keep_cols, self._kept_mean, self._kept_scale)

    def embed(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Principal coordinates ``(n, n_coords)`` and off-manifold residuals ``(n,)`` of records ``(n, d)``."""
        return _embed_standardized(self.standardize(X), self.axes, self.n_near)

    def local_scale(self, coords: np.ndarray) -> np.ndarray:
        """Local scales ``(n, 2)`` of the reference around embedded queries ``coords (n, n_coords)``: the
        distance to the 3rd-nearest reference record and the mean distance to the 2nd- to 4th-nearest."""
        return _local_scale(coords, self.ref_coords, self.ref_norms, self.n_near)

    def white_share(self, delta: np.ndarray) -> np.ndarray:
        """Share ``(n,)`` of each difference's energy beyond the first ``white_split`` axes (0 when undefined)."""
        if self.white_split is None:
            return np.zeros(len(delta))
        E = delta**2
        total = E.sum(axis=1)
        tail = E[:, self.white_split :].sum(axis=1)
        return np.divide(tail, total, out=np.zeros_like(total), where=total > 1e-18)

    def describe(self) -> dict[str, Any]:
        return {
            "reference_records": self.n_reference,
            "coords": self.n_coords,
            "near_axes": self.n_near,
            "white_split": self.white_split,
            "alpha": self.alpha,
            "near_cut": round(self.near_cut, 4),
            "near2_cut": round(self.near2_cut, 4),
            "lookback": self.lookback,
            "intrinsic_dim": round(self.intrinsic_dim, 2),
            "white_cut": None if not np.isfinite(self.white_cut) else round(self.white_cut, 4),
            "residual_cut": None if not np.isfinite(self.residual_cut) else round(self.residual_cut, 4),
        }


class ProbeDetector:
    """Keeps every subject's recent queries and returns the alerts a new batch raises.

    Parameters
    ----------
    config : ProbingConfig
    n_features : int
    reference : ndarray of shape (n, n_features) or ReferenceProfile, optional
        Typical records (or a profile already fitted on them); without one, the first ``config.bootstrap``
        distinct records observed are used (and until then only the boundary and repeated-record
        detectors work).
    store : HistoryStore, optional
        Where histories are shared (default: this process only).
    reference_probs : ndarray of shape (m, n_classes), optional
        The served model's probabilities for typical records (the reference's), which calibrate the
        boundary detector (:meth:`set_margin_baseline`); in bootstrap mode, those of the bootstrap records.
    """

    def __init__(
        self,
        config: ProbingConfig,
        n_features: int,
        *,
        reference: np.ndarray | ReferenceProfile | None = None,
        store: HistoryStore | None = None,
        reference_probs: np.ndarray | None = None,
    ):
        self.config = config
        self.n_features = int(n_features)
        self.store = store if store is not None else MemoryHistoryStore()
        self.profile: ReferenceProfile | None = None
        self._bootstrap: dict[bytes, np.ndarray] = {}
        if isinstance(reference, ReferenceProfile):
            self.profile = reference
        elif reference is not None:
            self.profile = self._fit(np.asarray(reference, dtype=np.float64).reshape(-1, self.n_features))
        n_coords = self.profile.n_coords if self.profile is not None else min(config.components, self.n_features)
        self.dtype = entry_dtype(n_coords)
        self.histories: dict[str, SubjectHistory] = {}
        self._calls = 0
        self._boundary_need = np.ceil(config.boundary_fraction * np.arange(config.history + 1)).astype(np.int64)
        self.low_margin_rate: float | None = None
        self._bootstrap_probs: list[np.ndarray] = []
        if reference_probs is not None:
            self.set_margin_baseline(reference_probs)

    def set_margin_baseline(self, probs: np.ndarray) -> None:
        """Calibrate the boundary detector on the model's probabilities ``(n, c)`` for typical records.

        A model that is unsure of many ordinary records (many classes, overlapping ones) gives low margins
        to benign streams too; the boundary alert then needs a share of low margins that a benign stream
        reaches with probability under 1e-6 (binomial, at the reference's rate), and at least
        ``boundary_fraction``.
        """
        from scipy.stats import binom

        probs = np.asarray(probs, dtype=np.float64)
        rate = float(np.mean(_low_margin(probs, self.config.margin))) if len(probs) else 0.0
        self.low_margin_rate = rate
        n = np.arange(self.config.history + 1)
        need = binom.isf(1e-6, n, min(rate, 1.0)) + 1
        self._boundary_need = np.maximum(self._boundary_need, np.minimum(need, n + 1)).astype(np.int64)

    def _fit(self, X: np.ndarray) -> ReferenceProfile:
        cfg = self.config
        return ReferenceProfile.fit(
            X,
            n_coords=cfg.components,
            near_variance=cfg.near_variance,
            alpha=cfg.alpha,
            history=cfg.history,
            seed=cfg.seed,
        )

    def _collect_bootstrap(self, X: np.ndarray, probs: np.ndarray, fps: np.ndarray) -> None:
        for x, p, fp in zip(X, probs, fps, strict=True):
            if fp.tobytes() not in self._bootstrap:
                self._bootstrap[fp.tobytes()] = x
                self._bootstrap_probs.append(p)
        if len(self._bootstrap) >= self.config.bootstrap:
            self.profile = self._fit(np.asarray(list(self._bootstrap.values())))
            if self.low_margin_rate is None:
                self.set_margin_baseline(np.asarray(self._bootstrap_probs))
            self._bootstrap, self._bootstrap_probs = {}, []
            log.warning(
                "probing detection fitted its reference profile on the first %d distinct records served; "
                "set probing.reference to a sample of typical records instead",
                self.config.bootstrap,
            )

    def history(self, subject: Subject) -> SubjectHistory:
        h = self.histories.get(subject.label)
        if h is None:
            h = self.histories[subject.label] = SubjectHistory(subject.label, self.dtype, self.config.history)
        return h

    def _evict(self, now: float) -> None:
        horizon = now - self.config.window_seconds
        stale = [name for name, h in self.histories.items() if h.touched < horizon]
        for name in stale:
            del self.histories[name]
        if len(self.histories) > self.config.max_subjects:
            keep = sorted(self.histories.items(), key=lambda kv: kv[1].touched)[-self.config.max_subjects :]
            self.histories = dict(keep)

    def observe(
        self,
        subjects: list[Subject],
        X: np.ndarray,
        probs: np.ndarray,
        fingerprints: list[str],
        *,
        now: float,
        randomized: bool = False,
    ) -> list[Alert]:
        """Add records ``X (n, d)`` with model probabilities ``probs (n, c)`` and keyed fingerprints (hex,
        as the audit log writes them) to each subject's history; the alerts they raise.

        ``subjects`` starts with the key's (scope ``key``). ``randomized``: the key's tier adds noise to
        its answers, so exact repeats leak (averaging). Each alert names the keys it implicates
        (``Alert.keys``); it may implicate other keys than this request's.
        """
        cfg = self.config
        X = np.asarray(X, dtype=np.float64)
        n = len(X)
        fps = np.frombuffer(bytes.fromhex("".join(fingerprints)), dtype="<u8").reshape(n, 2)
        self._calls += 1
        if self._calls % 1024 == 0:
            self._evict(now)
        if self.profile is None and cfg.bootstrap > 0:
            self._collect_bootstrap(X, np.asarray(probs, dtype=np.float64), fps)
        key = subjects[0].name
        low = _low_margin(probs, cfg.margin)
        flags = (
            np.array([FLAG_LOW_MARGIN if low[0] else 0], np.uint8)
            if n == 1
            else np.where(low, FLAG_LOW_MARGIN, 0).astype(np.uint8)
        )
        if randomized:
            flags |= FLAG_RANDOMIZED
        profile = self.profile
        coords = scale = None
        n_coords = self.dtype["coords"].shape[0]
        if profile is not None:
            coords, residual = profile.embed(X)
            stored = coords.astype(np.float32)
            near_part = stored[:, : profile.n_near]
            norm2 = (near_part * near_part).sum(axis=1)
            flags[residual > profile.residual_cut] |= FLAG_OFF
            scale = profile.local_scale(coords)
            profile_id = profile.profile_id
        else:
            stored, residual, norm2 = np.zeros((n, n_coords), np.float32), np.zeros(n), np.zeros(n, np.float32)
            flags |= FLAG_UNEMBEDDED
            profile_id = 0
        new = Columns(
            {
                "time": np.full(n, now) if n > 1 else np.array([now]),
                "fp": fps,
                "flags": flags,
                "residual": residual.astype(np.float32),
                "profile": np.full(n, profile_id, dtype=np.uint16) if n > 1 else np.array([profile_id], np.uint16),
                "key": np.full(n, key.encode()[:16], dtype="S16") if n > 1 else np.array([key.encode()[:16]], "S16"),
                "norm2": norm2,
                "coords": stored,
            }
        )
        histories = [self.history(s) for s in subjects]
        for h in histories:
            h.touched = now
        self.store.sync(histories)
        own = histories[0]
        groups = histories[1:]
        # A tenant's or address's history that so far holds exactly this key's queries, all of which came
        # from it, is this key's history: it is kept as a twin (no copy, no second judgement) until another
        # key queries from there or this key from elsewhere, when the twin gets its own copy.
        for twin in list(own.twins):
            if twin not in groups:
                _materialize(twin)
        fresh = own.size == 0
        base_flags = flags.copy()
        found: list[Alert] = []
        published: list[tuple[SubjectHistory, Columns]] = []
        for subject, h in zip(subjects, histories, strict=True):
            if h is not own:
                if h.twin_of is not None and h.twin_of is not own:
                    _materialize(h)
                if h.twin_of is own:
                    continue
                if fresh and h.size == 0 and not self.store.shared:
                    h.twin_of = own
                    own.twins.add(h)
                    continue
            # The key's rows are `new` itself; the others get their own flags (a history's own judgement).
            rows = Columns({**new.cols, "flags": base_flags.copy()}) if published else new
            nearest = self._flag(rows, h.since(now - cfg.window_seconds), coords, scale)
            h.append(rows)
            published.append((h, rows))
            found += self._scan(subject, h, rows, nearest, now=now, randomized=randomized)
        self.store.publish(published)
        # One alert per subject, detector and implicated key per cooldown: a key's own alert also stands for
        # its share of the tenant's and the address's evidence; a tenant or address alert fires for keys
        # that have none yet (another key joining the probing raises a new one).
        alerts = []
        for alert in sorted(found, key=lambda a: a.subject.scope != "key"):
            keys = [key] if alert.subject.scope == "key" else alert.keys
            unclaimed = [
                k
                for k in keys
                if self.store.claim_alert(
                    f"{alert.subject.label}:{alert.detector}:{k}", cooldown=cfg.cooldown_seconds, now=now
                )
            ]
            if alert.subject.scope == "key":
                for other in subjects[1:]:
                    self.store.claim_alert(
                        f"{other.label}:{alert.detector}:{key}", cooldown=cfg.cooldown_seconds, now=now
                    )
            if not unclaimed:
                continue
            alert.keys = unclaimed
            alert.detail["scope"] = alert.subject.scope
            if alert.subject.scope != "key":
                alert.detail["keys"] = unclaimed
            alerts.append(alert)
        return alerts

    def _flag(
        self, rows: Columns, old: HistoryView, coords: np.ndarray | None, scale: np.ndarray | None
    ) -> np.ndarray | None:
        """Set the repeat/near/white flags of new ``rows`` against a subject's live ``old`` entries; the
        fingerprints ``(n, 2)`` of each row's nearest earlier query (zeros when it has none)."""
        profile = self.profile
        n = len(rows)
        fp, old_fp = rows["fp"], old["fp"]
        # Records are told apart by the first 64 bits of their keyed fingerprints (a collision among a
        # subject's recent queries has odds of about 2^-45).
        if n == 1:
            repeat = np.array([bool((old_fp[:, 0] == fp[0, 0]).any())]) if len(old_fp) else np.zeros(1, dtype=bool)
        elif n * len(old_fp) <= 1 << 20:
            repeat = (fp[:, 0][:, None] == old_fp[:, 0][None, :]).any(axis=1)
        else:
            repeat = np.isin(fp[:, 0], old_fp[:, 0])
        if n > 1:
            repeat |= np.tril(fp[:, 0][:, None] == fp[:, 0][None, :], k=-1).any(axis=1)
        rows["flags"][repeat] |= FLAG_REPEAT
        if profile is None or coords is None or scale is None:
            return None
        if n == 1:
            return None if repeat[0] else self._flag_one(profile, rows, old, coords[0], scale[0])
        usable = ((old["flags"] & (FLAG_REPEAT | FLAG_UNEMBEDDED)) == 0) & (old["profile"] == profile.profile_id)
        lookback = self.config.history  # the near test's; its cut-offs are scaled beyond the calibrated look-back
        idx = np.flatnonzero(usable)[-lookback:]
        k = profile.n_near
        Q = coords[:, :k].astype(np.float32)
        cand_coords = old["coords"][idx]
        C = cand_coords[:, :k]
        L = len(C)
        D = np.empty((n, L + n))
        if L:
            D[:, :L] = _sq_dists(Q, C)
        D[:, L:] = _sq_dists(Q, Q)
        # Row i is judged against the distinct queries before it (earlier rows of this batch included), by
        # their positions in the sequence of distinct queries: the last `lookback` for the near test, the
        # last `profile.lookback` (the calibrated look-back) for the white test.
        distinct = ~repeat
        before = np.cumsum(distinct) - distinct
        position = np.concatenate([np.arange(L), L + before])
        mine = L + before
        usable_col = np.concatenate([np.ones(L, dtype=bool), distinct])
        age = mine[:, None] - position[None, :]  # 1 = the distinct query just before
        D[~((age >= 1) & (age <= lookback) & usable_col[None, :])] = np.inf
        D[repeat] = np.inf  # a repeat adds no new point: it is judged by the repeated-record detector
        if D.shape[1] < 2:
            return None
        two = np.sqrt(np.partition(D, 1, axis=1)[:, :2])
        has = np.isfinite(two[:, 0])
        if not has.any():
            return None
        n_cand = np.isfinite(D).sum(axis=1)
        stretch = np.minimum(1.0, (profile.lookback / np.maximum(n_cand, 1)) ** (1.0 / profile.intrinsic_dim))
        with np.errstate(invalid="ignore"):
            near = has & (
                (two[:, 0] < stretch * profile.near_cut * scale[:, 0])
                | (two.mean(axis=1) < stretch * profile.near2_cut * scale[:, 1])
            )
        recent = np.where(age <= profile.lookback, D, np.inf)
        j = np.argmin(recent, axis=1)
        has_recent = np.isfinite(recent[np.arange(n), j])
        pool_full = np.concatenate([cand_coords, coords.astype(np.float32)]) if L else coords
        pool_fp = np.concatenate([old_fp[idx], fp]) if L else fp
        white = has_recent & (profile.white_share(coords - pool_full[j]) > profile.white_cut)
        rows["flags"][near] |= FLAG_NEAR
        rows["flags"][white] |= FLAG_WHITE
        j_any = np.argmin(D, axis=1)
        return np.where(has[:, None], pool_fp[j_any], 0)

    def _flag_one(
        self, profile: ReferenceProfile, rows: Columns, old: HistoryView, z: np.ndarray, scale: np.ndarray
    ) -> np.ndarray | None:
        """:meth:`_flag` for one distinct record (the common request), in few whole-array operations."""
        coords, norms, fps = old["coords"], old["norm2"], old["fp"]
        present = int(np.bitwise_or.reduce(old["flags"])) if len(coords) else 0
        if present & (FLAG_REPEAT | FLAG_UNEMBEDDED) or (len(coords) and (old["profile"] != profile.profile_id).any()):
            usable = ((old["flags"] & (FLAG_REPEAT | FLAG_UNEMBEDDED)) == 0) & (old["profile"] == profile.profile_id)
            idx = np.flatnonzero(usable)[-self.config.history :]
            coords, norms, fps = coords[idx], norms[idx], fps[idx]
        else:
            cut = -self.config.history
            coords, norms, fps = coords[cut:], norms[cut:], fps[cut:]
        L = len(coords)
        if L == 0:
            return None
        k = profile.n_near
        q = z[:k].astype(np.float32)
        d2 = norms - 2.0 * (coords[:, :k] @ q) + float(q @ q)
        j = int(np.argmin(d2))
        if L > 1:
            pair = np.partition(d2, 1)
            d1, d2nd = max(float(pair[0]), 0.0) ** 0.5, max(float(pair[1]), 0.0) ** 0.5
        else:
            d1, d2nd = max(float(d2[0]), 0.0) ** 0.5, np.inf
        stretch = min(1.0, (profile.lookback / L) ** (1.0 / profile.intrinsic_dim))
        near = d1 < stretch * profile.near_cut * scale[0] or (d1 + d2nd) / 2 < stretch * profile.near2_cut * scale[1]
        if L > profile.lookback:
            j_recent = L - profile.lookback + int(np.argmin(d2[-profile.lookback :]))
        else:
            j_recent = j
        white = _white_share_one(profile, z - coords[j_recent]) > profile.white_cut
        rows["flags"][0] |= (FLAG_NEAR if near else 0) | (FLAG_WHITE if white else 0)
        return fps[j][None]

    def _scan(
        self,
        subject: Subject,
        h: SubjectHistory,
        rows: Columns,
        nearest: np.ndarray | None,
        *,
        now: float,
        randomized: bool,
    ) -> list[Alert]:
        cfg = self.config
        new_flags = rows["flags"]
        # An alert can only start at a new query that adds to its count: evidence for the perturbation
        # scan, a low margin for the boundary test, a noisy answer for repeats. Most benign requests add none.
        added = int(np.bitwise_or.reduce(new_flags))
        if not added & (EVIDENCE | FLAG_LOW_MARGIN) and not randomized:
            return []
        live = h.since(now - cfg.window_seconds)
        live_flags = live["flags"]
        keep = (live_flags & FLAG_REPEAT) == 0
        found: list[Alert] = []
        new_idx = np.flatnonzero((new_flags & FLAG_REPEAT) == 0)  # the new distinct queries end the live ones
        n_new = len(new_idx)
        # 1. perturbation-burst: scan_threshold evidence among the last scan_window distinct queries.
        if n_new and added & EVIDENCE:
            tail = np.flatnonzero(keep)[-(cfg.scan_window + n_new - 1) :]  # what the new queries' windows cover
            ev = ((live_flags[tail] & EVIDENCE) != 0).astype(np.int64)
            csum = np.concatenate([[0], np.cumsum(ev)])
            ends = np.arange(len(ev) - n_new, len(ev)) + 1  # window ends at each new distinct query
            counts = csum[ends] - csum[np.maximum(0, ends - cfg.scan_window)]
            hit = np.flatnonzero(counts >= cfg.scan_threshold)
            if len(hit):
                i, end = int(new_idx[hit[0]]), int(ends[hit[0]])
                window = tail[max(0, end - cfg.scan_window) : end]
                flags = live_flags[window]
                detail = {
                    "evidence": {
                        "near": int(((flags & FLAG_NEAR) != 0).sum()),
                        "white": int(((flags & FLAG_WHITE) != 0).sum()),
                        "off": int(((flags & FLAG_OFF) != 0).sum()),
                    },
                    "queries": len(flags),
                    "threshold": cfg.scan_threshold,
                    "fingerprint": _hex(rows["fp"][i]),
                }
                if nearest is not None and nearest[i].any():
                    detail["nearest"] = _hex(nearest[i])
                keys = _implicated(live["key"][window], (flags & EVIDENCE) != 0)
                found.append(Alert("perturbation-burst", subject, detail, at=i, keys=keys))
        # 2. boundary: a large share of low-margin answers among enough recent distinct queries.
        if n_new and added & FLAG_LOW_MARGIN:
            n_recent = int(np.count_nonzero(keep))
            low = keep & ((live_flags & FLAG_LOW_MARGIN) != 0)
            n_low = int(np.count_nonzero(low))
            need = int(self._boundary_need[min(n_recent, len(self._boundary_need) - 1)])
            if n_recent >= cfg.boundary_min and n_low >= need:
                detail = {"low_margin": n_low, "recent": n_recent, "margin": cfg.margin, "needed": need}
                keys = _implicated(live["key"][keep], low[keep], share=cfg.boundary_fraction)
                found.append(Alert("boundary", subject, detail, at=len(rows) - 1, keys=keys))
        # 3. repeated-record: only where repeats can average noise away (answers of randomized tiers).
        if randomized:
            noisy = (live_flags & FLAG_RANDOMIZED) != 0
            same = rows["fp"][:, 0][:, None] == live["fp"][noisy, 0][None, :]  # (n, noisy live entries)
            counts = same.sum(axis=1)
            over = np.flatnonzero(counts >= cfg.repeat_threshold)
            if len(over):
                i = int(over[0])
                detail = {"count": int(counts[i]), "fingerprint": _hex(rows["fp"][i])}
                keys = _keys(live["key"][noisy][same[i]])
                found.append(Alert("repeated-record", subject, detail, at=i, keys=keys))
        return found


def _white_share_one(profile: ReferenceProfile, delta: np.ndarray) -> float:
    """:meth:`ReferenceProfile.white_share` of one difference vector."""
    if profile.white_split is None:
        return 0.0
    energy = delta * delta
    total = float(energy.sum())
    return float(energy[profile.white_split :].sum()) / total if total > 1e-18 else 0.0


def _materialize(twin: SubjectHistory) -> None:
    """Give a twin history its own copy of the entries it shared (see :meth:`ProbeDetector.observe`)."""
    source, twin.twin_of = twin.twin_of, None
    if source is not None:
        source.twins.discard(twin)
        twin.append(source.entries())


def _low_margin(probs: np.ndarray, margin: float) -> np.ndarray:
    """Whether each row's top-2 probability margin is below ``margin``."""
    if probs.shape[1] < 2:
        return np.zeros(len(probs), dtype=bool)
    if len(probs) == 1:  # one row: plain floats beat a partition
        first, second = sorted(probs[0].tolist())[-2:][::-1]
        return np.array([first - second < margin])
    top2 = np.partition(probs, probs.shape[1] - 2, axis=1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]) < margin


def _hex(fp: np.ndarray) -> str:
    """The audit log's hex form of a fingerprint held as two little-endian uint64."""
    return np.ascontiguousarray(fp, dtype="<u8").tobytes().hex()


def _keys(keys: np.ndarray) -> list[str]:
    return sorted({k.decode() for k in keys})


def _implicated(keys: np.ndarray, flagged: np.ndarray, *, share: float = 0.0) -> list[str]:
    """The keys an alert names: those with at least 2 flagged queries (and at least ``share`` of their
    queries flagged), so that a bystander whose one query is a false positive is not named beside a
    prober; every key with a flagged query when none qualifies (a swarm of keys, one query each)."""
    names, counts = np.unique(keys[flagged], return_counts=True)
    if share > 0:
        totals = np.array([(keys == k).sum() for k in names])
        ok = (counts >= 2) & (counts >= share * totals)
    else:
        ok = counts >= 2
    chosen = names[ok] if ok.any() else names
    return sorted(k.decode() for k in chosen)
