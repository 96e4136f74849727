"""Probing detection: per key, flag query patterns of membership-inference attacks.

Three detectors look at each key's recent records (the last ``history`` within ``window_seconds``):

1. **repeated-record**: one record queried ``repeat_threshold`` times (exact duplicates; an attacker
   averaging noisy outputs, or a LiRA-style attacker re-querying).
2. **perturbation-burst**: ``burst_threshold`` distinct records that are near-duplicates of the newest
   one. This is the label-only attack's pattern: many slightly perturbed copies of a target record, to
   measure how far it is from the decision boundary. Near-duplicates are found with SimHash
   (random-hyperplane locality-sensitive hashing): a record is standardized, then each of ``bits``
   random hyperplanes through the origin gives one bit; two records at angle ``θ`` differ in each bit
   with probability ``θ/π``, so a Hamming distance ``<= near_bits`` means "almost the same direction".
3. **boundary**: at least ``boundary_min`` recent records, of which a ``boundary_fraction`` share have a
   top-2 probability margin below ``margin`` (queries walking along the decision boundary).

Standardization uses a reference sample when the policy gives one (``probing.reference``, a ``.npy``
of typical records), else the model's own standardization, else running estimates over all traffic.
The state is per process; the alerts go to the audit database, which every worker reads.
"""

from __future__ import annotations

import hashlib

import numpy as np

from memberscope.gateway.policy import ProbingConfig

__all__ = ["ProbeDetector", "hamming", "simhash"]


def simhash(Z: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """64-bit signatures (uint64) of standardized records ``Z (n, d)`` under hyperplanes ``(bits, d)``."""
    bits = (Z @ planes.T) > 0
    weights = np.left_shift(np.uint64(1), np.arange(planes.shape[0], dtype=np.uint64))
    return (bits.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)


def hamming(a: np.ndarray | np.uint64, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distances between signature(s) ``a`` and signatures ``b``."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


class _KeyState:
    """A key's last ``history`` records as ring buffers: time, signature, digest, low-margin flag."""

    def __init__(self, history: int):
        self.times = np.full(history, -np.inf)
        self.sigs = np.zeros(history, dtype=np.uint64)
        self.digests = np.zeros(history, dtype=np.uint64)
        self.low = np.zeros(history, dtype=bool)
        self.next = 0
        self.last_alert: dict[str, float] = {}

    def push(self, t: float, sig, digest, low: bool) -> None:
        i = self.next % len(self.times)
        self.times[i], self.sigs[i], self.digests[i], self.low[i] = t, sig, digest, low
        self.next += 1


class ProbeDetector:
    """Keeps each key's recent records and returns the alerts a new batch raises."""

    def __init__(self, config: ProbingConfig, n_features: int, *, mean=None, std=None):
        self.config = config
        self.n_features = int(n_features)
        rng = np.random.default_rng(config.seed)
        self.planes = rng.standard_normal((config.bits, self.n_features))
        self._fixed = mean is not None and std is not None
        self.mean = np.zeros(self.n_features) if mean is None else np.asarray(mean, dtype=np.float64).ravel()
        self.std = np.ones(self.n_features) if std is None else np.asarray(std, dtype=np.float64).ravel()
        self.std = np.where(self.std > 1e-12, self.std, 1.0)
        self._n, self._m2 = 0, np.zeros(self.n_features)
        self.keys: dict[str, _KeyState] = {}

    def _standardize(self, X: np.ndarray) -> np.ndarray:
        if not self._fixed:  # Chan et al.'s parallel update of the running mean and variance
            n_b = len(X)
            mean_b = X.mean(axis=0)
            m2_b = ((X - mean_b) ** 2).sum(axis=0)
            n = self._n + n_b
            delta = mean_b - self.mean
            self.mean = self.mean + delta * n_b / n
            self._m2 = self._m2 + m2_b + delta**2 * self._n * n_b / n
            self._n = n
            if n >= 2:
                std = np.sqrt(self._m2 / (n - 1))
                self.std = np.where(std > 1e-12, std, 1.0)
        return (X - self.mean) / self.std

    def observe(self, key_id: str, X: np.ndarray, probs: np.ndarray, *, now: float) -> list[dict]:
        """Add records ``X`` (with model probabilities ``probs``) of ``key_id``; the new alerts."""
        cfg = self.config
        X = np.asarray(X, dtype=np.float64)
        sigs = simhash(self._standardize(X), self.planes)
        top2 = np.sort(probs, axis=1)[:, -2:] if probs.shape[1] > 1 else np.hstack([np.zeros_like(probs), probs])
        low = (top2[:, 1] - top2[:, 0]) < cfg.margin
        digests = np.array(
            [int.from_bytes(hashlib.blake2b(x.tobytes(), digest_size=8).digest(), "little") for x in X], dtype=np.uint64
        )
        state = self.keys.get(key_id)
        if state is None:
            state = self.keys[key_id] = _KeyState(cfg.history)
        found: dict[str, dict] = {}
        for i in range(len(X)):
            live = state.times >= now - cfg.window_seconds  # the slots holding records of this window
            repeats = int(((state.digests == digests[i]) & live).sum()) + 1
            if repeats >= cfg.repeat_threshold:
                found.setdefault("repeated-record", {"count": repeats, "fingerprint": f"{int(digests[i]):016x}"})
            # Exact copies have distance 0; they count as repeats, not as perturbed copies.
            near = int(((hamming(sigs[i], state.sigs) <= cfg.near_bits) & live).sum()) - (repeats - 1)
            if near + 1 >= cfg.burst_threshold:
                found.setdefault("perturbation-burst", {"near_duplicates": near + 1, "near_bits": cfg.near_bits})
            state.push(now, sigs[i], digests[i], bool(low[i]))
        live = state.times >= now - cfg.window_seconds
        n_recent, n_low = int(live.sum()), int((state.low & live).sum())
        if n_recent >= cfg.boundary_min and n_low >= cfg.boundary_fraction * n_recent:
            found["boundary"] = {"low_margin": n_low, "recent": n_recent, "margin": cfg.margin}
        alerts = []
        for detector, detail in found.items():
            last = state.last_alert.get(detector)
            if last is not None and now - last < cfg.cooldown_seconds:
                continue  # one alert per detector and key per cooldown period
            state.last_alert[detector] = now
            alerts.append({"detector": detector, "detail": detail})
        return alerts
