"""Shadow-model attacks on a target seen only through its answers: :class:`ShadowModelAttack`.

The attacker trains shadow models on their own data (:class:`~memberscope.redteam.shadowset.ShadowSet`), sees
them through the same output post-processing as the target's API (:class:`View`: top-k, rounding, labels, the
noise recon measured, averaged over as many repeats as the target's answers are), and scores the target's records
with the **same registered attacks as a local audit** (:mod:`memberscope.attacks`, run by
:func:`memberscope.engine.run_attacks`):

- ``lira-offline`` and ``rmia-offline``: per-record likelihood-ratio attacks (Carlini et al. 2022; Zarifzadeh et
  al. 2024). The reference shadows never train on a candidate, so each candidate's OUT distribution comes from
  their answers on it (``ReferenceOutputs`` with all-OUT masks); the target is queried once per candidate (per
  view). RMIA's population records are the attacker's held-out records.
- ``shadow``: Shokri et al.'s (2017) classifier of sorted output vectors, fitted on the reference shadows'
  answers on their own training and held-out records (:class:`memberscope.attacks.shadow.ShadowClassifier`).
- ``label-only``: Choquette-Choo et al.'s (2021) perturbation attack, calibrated by the reference shadows' shares.

The calibration shadows play the target: scored the same way on records whose membership the attacker knows, they
give the scores a threshold is calibrated on and the attack's power on models like the target
(``calibration_scores_``, ``calibration_member_``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.targets import Target, as_probabilities

if TYPE_CHECKING:
    from memberscope.redteam.shadowset import ShadowSet

__all__ = [
    "API_ATTACKS",
    "ATTACK_MODELS",
    "PerClassClassifier",
    "ShadowModelAttack",
    "View",
    "shadow_features",
    "use_per_class",
]

ATTACK_MODELS = ("logreg", "gbdt", "mlp")
API_ATTACKS = ("lira-offline", "rmia-offline", "shadow", "label-only")
"""Registered attacks :class:`ShadowModelAttack` runs against a target seen through its API."""
RMIA_A_GRID = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
"""RMIA's offline ``a`` is chosen from these on the calibration shadows."""


def shadow_features(
    observed: np.ndarray, labels: np.ndarray, *, n_sorted: int = 10, kind: str = "probabilities"
) -> np.ndarray:
    """Attack features ``(n, min(n_sorted, n_classes) + 3)`` of outputs ``observed`` of output kind ``kind``
    (see the module docstring and :data:`memberscope.targets.OUTPUT_KINDS`)."""
    probs = as_probabilities(observed, kind)
    m = min(n_sorted, probs.shape[1])
    top = -np.sort(-probs, axis=1)[:, :m]
    p_true = probs[np.arange(len(probs)), labels]
    correct = (np.argmax(probs, axis=1) == labels).astype(np.float64)
    return np.column_stack([top, p_true, np.log(np.maximum(p_true, 1e-6)), correct])


def _attack_model(kind: str, seed: int):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logreg":
        from sklearn.linear_model import LogisticRegression

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if kind == "gbdt":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    from sklearn.neural_network import MLPClassifier

    return make_pipeline(StandardScaler(), MLPClassifier((32,), max_iter=500, random_state=seed))


class PerClassClassifier:
    """One classifier per class, or one for all; a class whose records are all one kind gets that constant."""

    def __init__(self, kind: str, per_class: bool, seed: int):
        self.kind, self.per_class, self.seed = kind, per_class, seed

    def fit(self, F: np.ndarray, labels: np.ndarray, member: np.ndarray) -> PerClassClassifier:
        self.models: dict[int, Any] = {}
        groups = np.unique(labels) if self.per_class else [-1]
        for c in groups:
            sel = labels == c if self.per_class else slice(None)
            m = member[sel]
            self.models[int(c)] = (
                float(m[0]) if m.min() == m.max() else _attack_model(self.kind, self.seed).fit(F[sel], m)
            )
        return self

    def score(self, F: np.ndarray, labels: np.ndarray) -> np.ndarray:
        out = np.full(len(F), 0.5)
        if not self.per_class:
            return self._one(self.models[-1], F)
        for c in np.unique(labels):
            sel = labels == c
            # A class no shadow saw: the all-class fallback would need another model, 0.5 says "unknown".
            if int(c) in self.models:
                out[sel] = self._one(self.models[int(c)], F[sel])
        return out

    @staticmethod
    def _one(model: Any, F: np.ndarray) -> np.ndarray:
        if isinstance(model, float):
            return np.full(len(F), model)
        return model.predict_proba(F)[:, 1]


def use_per_class(per_class: str | bool, labels: np.ndarray, member: np.ndarray, min_per_class: int) -> bool:
    """``per_class`` unless ``"auto"``; then whether every class has ``min_per_class`` members and non-members."""
    if per_class != "auto":
        return bool(per_class)
    for c in np.unique(labels):
        m = member[labels == c]
        if m.sum() < min_per_class or (~m).sum() < min_per_class:
            return False
    return True


@dataclass(frozen=True)
class View:
    """What an attacker sees of a model: the API's post-processing, averaged over ``repeats`` queries of each
    record (when the answers are noisy), on each record and, with ``augment``, its mirror image (images only).

    ``postprocess`` is a :func:`~memberscope.targets.postprocess.parse_postprocessors` spec (recon's
    :meth:`~memberscope.redteam.recon.Exposure.postprocess_spec`); shadows are shown it, and the target's own
    answers are averaged the same way (:meth:`observe_target`).
    """

    postprocess: str = ""
    repeats: int = 1
    augment: bool = False

    @property
    def key(self) -> tuple:
        return (self.postprocess, self.repeats, self.augment)

    def postprocessor(self):
        from memberscope.targets.postprocess import Averaged, parse_postprocessors

        return Averaged(parse_postprocessors(self.postprocess), self.repeats)

    @property
    def kind(self) -> str:
        """The output kind of what is seen (averaged noisy answers are probabilities)."""
        return self.postprocessor().granularity

    def views(self, X: np.ndarray) -> list[np.ndarray]:
        """The records, then (with ``augment`` and images ``(n, c, h, w)``) their horizontal mirror images."""
        X = np.asarray(X)
        return [X, X[..., ::-1]] if self.augment and X.ndim == 4 else [X]

    def n_views(self, X: np.ndarray) -> int:
        return len(self.views(X[:1]))

    def observe(self, model: Target, X: np.ndarray, *, seed: int) -> np.ndarray:
        """A local model's logits ``(n, n_views, n_classes)`` as the attacker sees the target's (one query per
        record and view: the repeats are simulated exactly on the model's one answer)."""
        from memberscope.targets import Postprocessed
        from memberscope.targets.outputs import as_logits

        seen = Postprocessed(model, self.postprocessor(), seed=seed)
        return np.stack([as_logits(seen.query(v), seen.output_kind) for v in self.views(X)], axis=1)

    def observe_target(self, target: Target, X: np.ndarray) -> np.ndarray:
        """The target's logits ``(n, n_views, n_classes)``: each record (and view) asked ``repeats`` times, the
        answers averaged as probabilities; ``n · n_views · repeats`` queries."""
        from memberscope.targets.outputs import as_logits, as_probabilities

        out = []
        for v in self.views(X):
            if self.repeats == 1:
                out.append(as_logits(target.query(v), target.output_kind))
                continue
            total: np.ndarray | None = None
            for _ in range(self.repeats):
                seen = as_probabilities(target.query(v), target.output_kind)
                total = seen if total is None else total + seen
            assert total is not None  # the loop ran: repeats > 1 here (1 is handled above)
            out.append(as_logits(total / self.repeats, "probabilities"))
        return np.stack(out, axis=1)

    def queries(self, n: int, X: np.ndarray) -> int:
        """Queries :meth:`observe_target` spends on ``n`` records like ``X``."""
        return n * self.repeats * self.n_views(X)


class ShadowModelAttack:
    """A registered attack against a target seen only through its answers, with shadow models on the attacker's data.

    Usage::

        attack = ShadowModelAttack(attack="lira-offline", n_shadow=8, postprocess="top-k:1", seed=0)
        attack.fit(X_public, y_public, n_classes=10)   # shadows, calibration scores
        scores = attack.score(target, X, y)             # (n,), higher = more likely member

    Parameters
    ----------
    attack : {"lira-offline", "rmia-offline", "shadow", "label-only"}
        The registered attack (see the module docstring).
    n_shadow : int
        Reference shadows ``K`` (at least 2).
    n_calibration : int
        Calibration shadows ``M``, which play the target (at least 1).
    recipe : str, Recipe or estimator
        The shadows' model: a family of :data:`~memberscope.redteam.families.SHADOW_FAMILIES` (default ``mlp``), a
        recipe, a scikit-learn class path, a saved estimator or Pipeline
        (:func:`~memberscope.redteam.families.resolve_shadow_model`).
    recipe_params : dict, optional
    postprocess : str
        What the target's API shows (a :func:`~memberscope.targets.postprocess.parse_postprocessors` spec, noise
        included), applied to the shadows' outputs; empty for full probabilities or logits.
    repeats : int
        Queries of each record averaged (noisy APIs; see :class:`View`).
    augment : bool
        Also query each image's mirror image (images only; offline LiRA fits one Gaussian per view).
    holdout : float
        Share of the attacker's records held out of every shadow
        (:class:`~memberscope.redteam.shadowset.AttackerSplit`).
    attack_params : dict, optional
        Parameters of the registered attack (RMIA's ``a`` is otherwise chosen on the calibration shadows).
    attack_model, per_class, min_per_class, n_sorted :
        The ``shadow`` attack's classifier (:class:`memberscope.attacks.shadow.ShadowClassifier`).
    n_queries : int
        The ``label-only`` attack's perturbed queries per record (its noise scale is chosen on the calibration
        shadows).
    fpr : float
        The false-positive rate calibration choices aim at (RMIA's ``a``, the label-only noise scale).
    seed : int
    cache : ArtifactCache, optional
        Where trained shadows are kept: a re-run retrains nothing.
    """

    name = "shadow-model"

    def __init__(
        self,
        *,
        attack: str = "lira-offline",
        n_shadow: int = 8,
        n_calibration: int = 2,
        recipe: Any = "mlp",
        recipe_params: dict[str, Any] | None = None,
        postprocess: str | Sequence[str] | None = None,
        repeats: int = 1,
        augment: bool = False,
        holdout: float = 0.2,
        attack_params: dict[str, Any] | None = None,
        attack_model: str = "logreg",
        per_class: str | bool = "auto",
        min_per_class: int = 30,
        n_sorted: int = 10,
        n_queries: int = 16,
        fpr: float = 0.01,
        seed: int = 0,
        cache: Any = None,
    ):
        problems = []
        if attack not in API_ATTACKS:
            problems.append(f"attack {attack!r} is not one of {API_ATTACKS}")
        if int(n_shadow) != n_shadow or n_shadow < 2:
            problems.append(f"n_shadow must be an integer >= 2; got {n_shadow!r}")
        if int(n_calibration) != n_calibration or n_calibration < 1:
            problems.append(f"n_calibration must be an integer >= 1; got {n_calibration!r}")
        if attack_model not in ATTACK_MODELS:
            problems.append(f"attack_model {attack_model!r} is not one of {ATTACK_MODELS}")
        if per_class not in ("auto", True, False):
            problems.append(f"per_class must be 'auto', True or False; got {per_class!r}")
        if int(repeats) != repeats or repeats < 1:
            problems.append(f"repeats must be an integer >= 1; got {repeats!r}")
        if not 0 < fpr < 1:
            problems.append(f"fpr must be in (0, 1); got {fpr!r}")
        if problems:
            raise InvalidInputError("invalid shadow-model attack: " + "; ".join(problems))
        self.attack, self.n_shadow, self.n_calibration = attack, int(n_shadow), int(n_calibration)
        self.recipe_spec, self.recipe_params = recipe, dict(recipe_params or {})
        post = postprocess if isinstance(postprocess, str) or postprocess is None else ",".join(postprocess)
        self.view = View(post or "", int(repeats), bool(augment))
        self.holdout, self.fpr, self.seed, self.cache = float(holdout), float(fpr), int(seed), cache
        self.attack_params = dict(attack_params or {})
        self.shadow_params = {
            "attack_model": attack_model,
            "per_class": per_class,
            "min_per_class": int(min_per_class),
            "n_sorted": int(n_sorted),
        }
        self.n_queries = int(n_queries)

    @property
    def postprocess(self) -> str:
        return self.view.postprocess

    # -- fitting ---------------------------------------------------------------------------------------------

    def fit(
        self, X: np.ndarray, y: np.ndarray, *, n_classes: int, shadows: ShadowSet | ShadowModelAttack | None = None
    ) -> ShadowModelAttack:
        """Train the shadows on the attacker's records ``X`` ``(n, ...)``, ``y`` ``(n,)`` (or reuse ``shadows``, a
        trained :class:`~memberscope.redteam.shadowset.ShadowSet` or another attack's), then score the calibration
        shadows: ``calibration_scores_`` and ``calibration_member_`` ``(M · (|S_cal| + |H|),)``."""
        from memberscope.redteam.families import FamilyContext, resolve_shadow_model
        from memberscope.redteam.shadowset import AttackerSplit, ShadowSet

        X, y = np.asarray(X), np.asarray(y)
        if len(X) != len(y):
            raise InvalidInputError(f"the attacker's data needs one label per record; got X {X.shape}, y {y.shape}")
        self.n_classes_ = int(n_classes)
        if isinstance(shadows, ShadowModelAttack):
            shadows = shadows.shadows_
        if shadows is None:
            split = AttackerSplit.draw(len(X), holdout=self.holdout, seed=self.seed)
            context = FamilyContext(
                feature_shape=tuple(X.shape[1:]),
                params=self.recipe_params,
                n_classes=self.n_classes_,
                n_records=len(split.reference) // 2,
            )
            name, recipe = resolve_shadow_model(self.recipe_spec, context)
            shadows = ShadowSet(
                recipe,
                n_reference=self.n_shadow,
                n_calibration=self.n_calibration,
                n_classes=self.n_classes_,
                seed=self.seed,
                cache=self.cache,
                name=name,
            ).train(X, y, split)
        self.shadows_: ShadowSet = shadows
        self.n_shadow, self.n_calibration = shadows.n_reference, shadows.n_calibration
        self.params_ = self._attack_params()
        self.calibration_scores_, self.calibration_member_ = self._calibration_scores(self.params_)
        return self

    def _labels(self, rows: str) -> np.ndarray:
        return self.shadows_.y[self.shadows_.rows(rows)]

    def _attack_params(self) -> dict[str, Any]:
        if self.attack == "shadow":
            return {**self.shadow_params, "seed": self.seed, **self.attack_params}
        if self.attack == "label-only":
            return {"n_queries": self.n_queries, "seed": self.seed, **self._label_only_scale(), **self.attack_params}
        if self.attack == "rmia-offline" and "a" not in self.attack_params:
            return {**self.attack_params, "a": self._choose_rmia_a()}
        return dict(self.attack_params)

    def _label_only_scale(self) -> dict[str, Any]:
        """The perturbation scale whose shares best separate the calibration shadows' members (at ``fpr``)."""
        from memberscope.redteam.label_only import LabelOnlyAttack
        from memberscope.targets import Postprocessed

        if "noise_scale" in self.attack_params:
            return {}
        s = self.shadows_
        # Chosen on the calibration records only: the held-out records certify the threshold on the target
        # (verdicts.certified_threshold), which holds only for a score function chosen without them. A scale picked
        # for keeping them low on the calibration shadows kept them low on the target too: the trial's 1-NN
        # server had 4.0% of its non-members called members for a certified bound of 1.96%.
        rows = s.rows("calibration")
        strategy = LabelOnlyAttack(n_queries=self.n_queries, seed=self.seed).fit(s.X[s.rows("reference")])
        local = [
            (
                Postprocessed(m, self.view.postprocessor(), seed=self.seed + j),
                s.X[rows],
                s.y[rows],
                s.calibration_members[j],
            )
            for j, m in enumerate(s.calibration_models)
        ]
        strategy.calibrate(local, fpr=self.fpr)
        self.label_only_calibration_ = strategy.calibration_
        return {"noise_scale": strategy.noise_scale}

    def _choose_rmia_a(self) -> float:
        """RMIA's ``a``: the grid value with the highest mean TPR at ``fpr`` (AUC breaking ties) on the calibration
        shadows (the target's ground truth is never used)."""
        from memberscope.metrics import roc_auc, roc_curve, tpr_at_fpr

        best: tuple[tuple[float, float], float] | None = None
        self.rmia_a_grid_: dict[float, list[float]] = {}
        # Chosen on the calibration records only, never on the held-out records that certify the threshold.
        s = self.shadows_
        tuning = np.tile(
            np.r_[np.ones(len(s.split.calibration), bool), np.zeros(len(s.split.holdout), bool)], s.n_calibration
        )
        for a in RMIA_A_GRID:
            scores, member = self._calibration_scores({**self.attack_params, "a": a})
            fpr_, tpr_, _ = roc_curve(member[tuning], scores[tuning])
            value = (tpr_at_fpr(fpr_, tpr_, self.fpr), roc_auc(member[tuning], scores[tuning]))
            self.rmia_a_grid_[a] = [round(v, 4) for v in value]
            if best is None or value > best[0]:
                best = (value, a)
        assert best is not None  # RMIA_A_GRID is not empty
        return float(best[1])

    def _calibration_scores(self, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        s = self.shadows_
        rows = "calibration+holdout"
        seen = s.outputs("calibration", rows, self.view)
        refs = s.outputs("reference", rows, self.view)
        labels = self._labels(rows)
        n_hold = len(s.split.holdout)
        scores, members = [], []
        for j, model in enumerate(s.calibration_models):
            shown = self._seen_model(model, self.seed + 1000 + j)
            run = self._run(seen[j], labels, refs, n_hold, params, model=shown, records=s.X[s.rows(rows)])
            self.run_params_ = run.params
            scores.append(run.scores)
            members.append(np.r_[s.calibration_members[j], np.zeros(n_hold, bool)])
        return np.concatenate(scores), np.concatenate(members)

    def _seen_model(self, model: Target, seed: int) -> Target | None:
        if self.attack != "label-only":
            return None
        from memberscope.targets import Postprocessed

        return Postprocessed(model, self.view.postprocessor(), seed=seed)

    # -- scoring ---------------------------------------------------------------------------------------------

    def _run(
        self,
        logits: np.ndarray,
        labels: np.ndarray,
        reference_logits: np.ndarray,
        n_population: int,
        params: dict[str, Any],
        *,
        model: Target | None = None,
        records: np.ndarray | None = None,
    ):
        """One engine run of the attack: ``logits`` ``(n, q, C)`` of the model scored on records whose last
        ``n_population`` are the attacker's held-out records (RMIA's population), ``reference_logits``
        ``(K, n, q, C)`` of the reference shadows on the same records, all OUT."""
        from memberscope.attacks import ReferenceOutputs, TargetOutputs
        from memberscope.engine import run_attacks

        s = self.shadows_
        pop = slice(len(labels) - n_population, len(labels))
        target = TargetOutputs(
            logits=logits,
            labels=labels,
            population_logits=logits[pop],
            population_labels=labels[pop],
            model=model,
            records=records,
            population_records=None if records is None else records[pop],
        )
        if self.attack == "shadow":
            # Shokri's classifier learns members from non-members on the reference shadows' own records.
            references = ReferenceOutputs(
                logits=s.outputs("reference", "reference", self.view),
                masks=s.reference_members,
                labels=self._labels("reference"),
            )
        else:
            models = None
            if self.attack == "label-only":
                models = [self._seen_model(m, self.seed + 2000 + k) for k, m in enumerate(s.reference_models)]
            references = ReferenceOutputs(
                logits=reference_logits,
                masks=np.zeros(reference_logits.shape[:2], dtype=bool),
                labels=labels,
                population_logits=reference_logits[:, pop],
                population_labels=labels[pop],
                models=models,
            )
        return run_attacks([self.attack], target, references, attack_params={self.attack: params}, seed=self.seed)[0]

    def reference_logits(self, X: np.ndarray) -> np.ndarray:
        """The reference shadows' logits ``(K, n, q, C)`` on records ``X`` as the attacker sees them."""
        from memberscope.game import derive_seed

        s = self.shadows_
        return np.stack(
            [self.view.observe(m, X, seed=derive_seed(self.seed, "view", k)) for k, m in enumerate(s.reference_models)]
        )

    def score_outputs(
        self,
        logits: np.ndarray,
        y: np.ndarray,
        holdout_logits: np.ndarray,
        *,
        X: np.ndarray,
        target: Target | None = None,
    ):
        """Scores of records ``X`` from the target's logits on them ``(n, q, C)`` and on the attacker's held-out
        records ``(h, q, C)`` (both from :meth:`View.observe_target`): an
        :class:`~memberscope.engine.evaluation.AttackRun` whose ``scores`` ``(n + h,)`` are the records' then the
        held-out records'. ``target`` is queried by the label-only attack."""
        s = self.shadows_
        X = np.asarray(X)
        hold = s.rows("holdout")
        records = np.concatenate([X, s.X[hold]])
        labels = np.concatenate([np.asarray(y), s.y[hold]])
        refs = np.concatenate([self.reference_logits(X), s.outputs("reference", "holdout", self.view)], axis=1)
        observed = np.concatenate([logits, holdout_logits])
        return self._run(observed, labels, refs, len(hold), self.params_, model=target, records=records)

    def score(self, target: Target, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Query ``target`` on ``X`` and the held-out records and score; ``(n,)``, higher = more likely member."""
        if not hasattr(self, "shadows_"):
            raise InvalidInputError("the shadow-model attack must be fit before it scores")
        X = np.asarray(X)
        hold = self.shadows_.X[self.shadows_.rows("holdout")]
        if self.attack == "label-only":
            # The label-only attack queries the target itself (each record and its perturbed copies); the outputs
            # passed along are placeholders (uniform logits) it does not read.
            logits, hold_logits = (np.zeros((len(rows), 1, self.n_classes_)) for rows in (X, hold))
            run = self.score_outputs(logits, y, hold_logits, X=X, target=target)
        else:
            run = self.score_outputs(
                self.view.observe_target(target, X), y, self.view.observe_target(target, hold), X=X
            )
        self.holdout_scores_ = run.scores[len(X) :]
        self.run_params_ = run.params
        return run.scores[: len(X)]

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attack": self.attack,
            "attack_params": getattr(self, "params_", self.attack_params),
            "n_shadow": self.n_shadow,
            "n_calibration": self.n_calibration,
            "postprocess": self.view.postprocess,
            "repeats": self.view.repeats,
            "augment": self.view.augment,
            "seed": self.seed,
        }
        if hasattr(self, "shadows_"):
            out["shadows"] = self.shadows_.describe()
        if hasattr(self, "rmia_a_grid_"):
            out["rmia_a_grid"] = {str(k): v for k, v in self.rmia_a_grid_.items()}
        if hasattr(self, "label_only_calibration_"):
            out["label_only_calibration"] = self.label_only_calibration_
        return out
