"""Shadow models trained on the attacker's own data, split so that calibrating an attack mirrors the real attack.

The attacker's records are split three ways (:class:`AttackerSplit`):

- **holdout** ``H``: no shadow trains on them. The target is queried on them as *known non-members* (records it
  cannot have seen: the attacker's own data, collected apart from the training set), to check on the target itself
  that a threshold set on shadows gives the false-positive rate asked for, and to compare the target's answers with
  the shadows' (:mod:`memberscope.redteam.fit`). They are RMIA's population records too.
- **reference** ``S_ref``: each of the ``K`` *reference* shadows trains on a random half. None of them sees a
  candidate record or a holdout record, so for every record scored they are OUT models, as offline LiRA and RMIA
  need.
- **calibration** ``S_cal``: each of the ``M`` *calibration* shadows trains on a random half, and plays the target:
  scored on ``S_cal ∪ H`` against the same ``K`` reference shadows, exactly as the real target is scored on its
  candidates, its members are known. Their scores set the threshold and measure the attack's power on models like
  the target.

Reference and calibration shadows train on equally many records, with the same recipe and seeds derived from the
run's seed; trained shadows are cached (:class:`~memberscope.cache.ArtifactCache`) so a re-run only queries.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.game import derive_seed

__all__ = ["MIN_ATTACKER_RECORDS", "AttackerSplit", "ShadowSet"]

MIN_ATTACKER_RECORDS = 50
"""Fewest attacker records: each part of the split needs some."""


@dataclass(frozen=True)
class AttackerSplit:
    """Positions in the attacker's records of the holdout, reference and calibration parts (see the module)."""

    holdout: np.ndarray
    reference: np.ndarray
    calibration: np.ndarray

    @classmethod
    def draw(cls, n: int, *, holdout: float = 0.2, seed: int = 0) -> AttackerSplit:
        """A seeded split of ``n`` records: ``holdout`` of them held out, the rest halved into reference and
        calibration parts.

        Raises
        ------
        InvalidInputError
            With fewer than :data:`MIN_ATTACKER_RECORDS` records or a holdout fraction outside (0, 0.8].
        """
        if n < MIN_ATTACKER_RECORDS:
            raise InvalidInputError(
                f"the attacker's data has {n} records; at least {MIN_ATTACKER_RECORDS} are needed (held-out "
                "non-members, reference shadows' and calibration shadows' training records)"
            )
        if not 0 < holdout <= 0.8:
            raise InvalidInputError(f"holdout must be a fraction in (0, 0.8]; got {holdout}")
        order = np.random.default_rng(derive_seed(seed, "attacker-split", 0)).permutation(n)
        n_hold = max(1, int(round(holdout * n)))
        rest = order[n_hold:]
        half = len(rest) // 2
        return cls(holdout=np.sort(order[:n_hold]), reference=np.sort(rest[:half]), calibration=np.sort(rest[half:]))

    def to_dict(self) -> dict[str, int]:
        return {
            "holdout": int(len(self.holdout)),
            "reference": int(len(self.reference)),
            "calibration": int(len(self.calibration)),
        }


def _half(n: int, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[: n // 2]] = True
    return mask


class ShadowSet:
    """``K`` reference and ``M`` calibration shadow models of one recipe, trained on the attacker's records.

    Parameters
    ----------
    recipe : Recipe
        How each shadow is trained (:mod:`memberscope.redteam.families`).
    n_reference : int
        ``K`` (at least 2: offline LiRA fits a Gaussian to their answers).
    n_calibration : int
        ``M`` (at least 1).
    n_classes : int
    seed : int
    cache : ArtifactCache, optional
    name : str
        The family's name, for results.

    Attributes (after :meth:`train`)
    --------------------------------
    split : AttackerSplit
    reference_models, calibration_models : lists of Target
    reference_members : ndarray of bool of shape (K, len(split.reference)) — which reference records each trained on.
    calibration_members : ndarray of bool of shape (M, len(split.calibration))
    """

    def __init__(
        self,
        recipe: Any,
        *,
        n_reference: int = 8,
        n_calibration: int = 2,
        n_classes: int,
        seed: int = 0,
        cache: Any = None,
        name: str | None = None,
    ):
        problems = []
        if int(n_reference) != n_reference or n_reference < 2:
            problems.append(f"n_reference must be an integer >= 2; got {n_reference!r}")
        if int(n_calibration) != n_calibration or n_calibration < 1:
            problems.append(f"n_calibration must be an integer >= 1; got {n_calibration!r}")
        if problems:
            raise InvalidInputError("invalid shadow models: " + "; ".join(problems))
        self.recipe, self.n_reference, self.n_calibration = recipe, int(n_reference), int(n_calibration)
        self.n_classes, self.seed, self.cache = int(n_classes), int(seed), cache
        recipe_name: str = getattr(recipe, "name", type(recipe).__name__)
        self.name = name or recipe_name
        self._outputs: dict[tuple, np.ndarray] = {}

    # -- training ------------------------------------------------------------------------------------------

    def first_members(self, split: AttackerSplit) -> np.ndarray:
        """The training mask (over ``split.reference``) of reference shadow 0: a family candidate trained on it
        becomes that shadow (:meth:`train`'s ``first``)."""
        return _half(len(split.reference), np.random.default_rng(derive_seed(self.seed, "shadow-ref", 0)))

    def train(self, X: np.ndarray, y: np.ndarray, split: AttackerSplit, *, first: Any = None) -> ShadowSet:
        """Train the shadows on the attacker's records ``X`` ``(n, ...)``, ``y`` ``(n,)``; ``first`` is an already
        trained reference shadow 0 (trained on :meth:`first_members`)."""
        self.X, self.y, self.split = np.asarray(X), np.asarray(y), split
        self.reference_members = np.stack(
            [
                _half(len(split.reference), np.random.default_rng(derive_seed(self.seed, "shadow-ref", k)))
                for k in range(self.n_reference)
            ]
        )
        self.calibration_members = np.stack(
            [
                _half(len(split.calibration), np.random.default_rng(derive_seed(self.seed, "shadow-cal", j)))
                for j in range(self.n_calibration)
            ]
        )
        self.reference_models = [
            first
            if k == 0 and first is not None
            else self.train_one(split.reference[self.reference_members[k]], seed=derive_seed(self.seed, "ref", k))
            for k in range(self.n_reference)
        ]
        self.calibration_models = [
            self.train_one(split.calibration[self.calibration_members[j]], seed=derive_seed(self.seed, "cal", j))
            for j in range(self.n_calibration)
        ]
        self._outputs.clear()
        return self

    def train_one(self, rows: np.ndarray, *, seed: int) -> Any:
        """One shadow trained on the attacker's records ``rows`` (cached by recipe, records and seed)."""
        X, y = self.X[rows], self.y[rows]
        if self.cache is None:
            return self._fit(X, y, seed)
        from memberscope.cache import hash_array, make_key

        key = make_key(
            artifact="redteam-shadow",
            recipe=self.recipe.config(),
            X=hash_array(X),
            y=hash_array(y),
            seed=seed,
            n_classes=self.n_classes,
        )
        return self.cache.model(
            key,
            self.recipe,
            n_classes=self.n_classes,
            feature_shape=tuple(X.shape[1:]),
            train=lambda: self._fit(X, y, seed),
        )

    def _fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> Any:
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            # Small shadows may not converge; the attack only needs them to fit their data as the target does.
            warnings.simplefilter("ignore", ConvergenceWarning)
            return self.recipe.train(X, y, n_classes=self.n_classes, seed=seed)

    def for_training(self, X: np.ndarray, y: np.ndarray, split: AttackerSplit) -> ShadowSet:
        """Bind the attacker's records without training (for :meth:`first_members` and :meth:`train_one`)."""
        self.X, self.y, self.split = np.asarray(X), np.asarray(y), split
        return self

    # -- outputs ---------------------------------------------------------------------------------------------

    @property
    def models(self) -> list[Any]:
        return [*self.reference_models, *self.calibration_models]

    def outputs(self, role: str, rows: str, view: Any) -> np.ndarray:
        """Observed logits ``(n_models, n_rows, n_views, n_classes)`` of the ``role`` shadows ("reference" or
        "calibration") on the attacker's records ``rows`` ("reference", "calibration+holdout"), seen through
        ``view`` (a :class:`~memberscope.redteam.shadow.View`); computed once per view."""
        key = (role, rows, view.key)
        if key not in self._outputs:
            models = self.reference_models if role == "reference" else self.calibration_models
            idx = self.rows(rows)
            offset = 0 if role == "reference" else self.n_reference
            self._outputs[key] = np.stack(
                [
                    view.observe(m, self.X[idx], seed=derive_seed(self.seed, "view", offset + i))
                    for i, m in enumerate(models)
                ]
            )
        return self._outputs[key]

    def rows(self, which: str) -> np.ndarray:
        """Positions of the attacker's records ``which``: "reference", "calibration", "holdout",
        "calibration+holdout"."""
        parts = {
            "reference": self.split.reference,
            "calibration": self.split.calibration,
            "holdout": self.split.holdout,
        }
        return np.concatenate([parts[p] for p in which.split("+")])

    def describe(self) -> dict[str, Any]:
        """The ``shadows`` block of results.json: family, recipe, counts and training sizes."""
        config = self.recipe.config() if hasattr(self.recipe, "config") else {}
        return {
            "family": self.name,
            "recipe": {"name": getattr(self.recipe, "name", None), **config},
            "n_reference": self.n_reference,
            "n_calibration": self.n_calibration,
            "records_per_shadow": int(len(self.split.reference) // 2),
            "split": self.split.to_dict(),
        }
