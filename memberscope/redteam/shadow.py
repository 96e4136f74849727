"""Shokri et al. (2017) shadow-model attack, for a target seen only through its API.

1. Train ``K`` shadow models on the attacker's proxy data, each on a random half (its members), with
   a training recipe from :mod:`memberscope.recipes`.
2. Query each shadow through the same post-processor the target's API applies (top-k, rounding,
   label only: see :meth:`memberscope.redteam.recon.Exposure.postprocess_spec`), so the attack
   model learns from outputs shaped like the target's.
3. Features per record: the probability vector sorted in descending order (top ``n_sorted``; withheld
   entries share the unshown mass), the true class's probability and its log, and whether the
   arg-max is the true class.
4. One attack classifier per class (Shokri's design) when every class has enough shadow records,
   else one classifier for all classes; logistic regression, gradient boosting or an MLP.

Out-of-fold scores (each shadow scored by an attack classifier trained on the *other* shadows) are
kept in ``calibration_scores_`` / ``calibration_member_`` to set thresholds without ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.targets import Target, as_probabilities, wrap

__all__ = ["ATTACK_MODELS", "PerClassClassifier", "ShadowModelAttack", "shadow_features", "use_per_class"]

ATTACK_MODELS = ("logreg", "gbdt", "mlp")
DEFAULT_RECIPE_PARAMS: dict[str, Any] = {"hidden": (64,), "epochs": 40, "batch_size": 64, "standardize": True}
"""Shadows by default: a torch MLP with one hidden layer of 64 units, trained to overfit like deployed models do."""


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


class ShadowModelAttack:
    """Shadow-model membership inference against any :class:`~memberscope.targets.Target`.

    Usage::

        attack = ShadowModelAttack(n_shadow=4, postprocess="top-k:1").fit(X_public, y_public, n_classes=10)
        scores = attack.score(target, X, y)     # (n,), higher = more likely member

    Parameters
    ----------
    n_shadow : int
        Shadow models ``K`` (at least 2, for out-of-fold calibration).
    recipe : str or Recipe
        Training recipe of the shadows (``memberscope.recipes.create(recipe, **recipe_params)``); the
        default is the torch ``mlp`` recipe with :data:`DEFAULT_RECIPE_PARAMS`.
    recipe_params : dict, optional
    attack_model : {"logreg", "gbdt", "mlp"}
    per_class : {"auto", True, False}
        ``auto``: per-class attack classifiers when every class has at least ``min_per_class``
        shadow records of each kind, else one classifier over all classes.
    postprocess : str
        What the target's API shows (a :func:`~memberscope.targets.postprocess.parse_postprocessors` spec),
        applied to the shadows' outputs; empty for an API that shows full probabilities or logits.
    n_sorted : int
        Sorted probabilities used as features.
    seed : int
    cache : memberscope.cache.ArtifactCache, optional
        Where trained shadows are kept, keyed by recipe, data, split and seed: a re-run retrains nothing.
    """

    name = "shadow"

    def __init__(
        self,
        *,
        n_shadow: int = 4,
        recipe: Any = "mlp",
        recipe_params: dict[str, Any] | None = None,
        attack_model: str = "logreg",
        per_class: str | bool = "auto",
        min_per_class: int = 30,
        postprocess: str | Sequence[str] | None = None,
        n_sorted: int = 10,
        seed: int = 0,
        cache: Any = None,
    ):
        problems = []
        if int(n_shadow) != n_shadow or n_shadow < 2:
            problems.append(f"n_shadow must be an integer >= 2; got {n_shadow!r}")
        if attack_model not in ATTACK_MODELS:
            problems.append(f"attack_model {attack_model!r} is not one of {ATTACK_MODELS}")
        if per_class not in ("auto", True, False):
            problems.append(f"per_class must be 'auto', True or False; got {per_class!r}")
        if problems:
            raise InvalidInputError("invalid shadow attack: " + "; ".join(problems))
        self.n_shadow, self.attack_model, self.per_class = int(n_shadow), attack_model, per_class
        self.min_per_class, self.n_sorted, self.seed = int(min_per_class), int(n_sorted), int(seed)
        self.postprocess = postprocess
        self.recipe = self._recipe(recipe, recipe_params)
        self.cache = cache

    @staticmethod
    def _recipe(recipe: Any, params: dict[str, Any] | None):
        from memberscope import recipes

        if not isinstance(recipe, str):
            return recipe
        if recipe == "mlp" and params is None:
            params = dict(DEFAULT_RECIPE_PARAMS)
        return recipes.create(recipe, **(params or {}))

    def shadow_target(self, model: Any, n_classes: int, *, postprocess: Any = None) -> Target:
        """A local target showing what the real one shows (``postprocess`` overrides it)."""
        post = self.postprocess if postprocess is None else postprocess
        return wrap(model, n_classes=n_classes, postprocess=post or None)

    def fit(
        self, X: np.ndarray, y: np.ndarray, *, n_classes: int, shadows: ShadowModelAttack | None = None
    ) -> ShadowModelAttack:
        """Train the shadows on the proxy records ``X``, ``y`` and the attack classifiers on their outputs.

        ``shadows``: another attack fit on the same ``X, y`` whose shadow models are reused (train once,
        then attack endpoints that expose different outputs).
        """

        X, y = np.asarray(X), np.asarray(y)
        if len(X) < 4 or len(X) != len(y):
            raise InvalidInputError(f"shadow data needs >= 4 records with one label each; got X {X.shape}, y {y.shape}")
        rng = np.random.default_rng(self.seed)
        self.n_classes_ = int(n_classes)
        self.shadow_models_, self.shadow_members_ = [], []
        feats, members, owners = [], [], []
        for k in range(self.n_shadow):
            member = np.zeros(len(X), bool)
            member[rng.permutation(len(X))[: len(X) // 2]] = True
            if shadows is not None:
                model, member = shadows.shadow_models_[k], shadows.shadow_members_[k]
            else:
                model = self._cached_train(X, y, member, seed=self.seed + k)
            shadow = self.shadow_target(model, self.n_classes_)
            observed = shadow.query(X)
            self.shadow_models_.append(model)
            self.shadow_members_.append(member)
            feats.append(shadow_features(observed, y, n_sorted=self.n_sorted, kind=shadow.output_kind))
            members.append(member)
            owners.append(np.full(len(X), k))
        F, member, owner, labels = (
            np.concatenate(feats),
            np.concatenate(members),
            np.concatenate(owners),
            np.tile(y, self.n_shadow),
        )
        self.per_class_ = self._use_per_class(labels, member)
        # Out-of-fold scores: shadow k scored by classifiers that never saw shadow k.
        self.calibration_scores_ = np.empty(len(F))
        for k in range(self.n_shadow):
            test = owner == k
            clf = PerClassClassifier(self.attack_model, self.per_class_, self.seed).fit(
                F[~test], labels[~test], member[~test]
            )
            self.calibration_scores_[test] = clf.score(F[test], labels[test])
        self.calibration_member_ = member
        self.classifier_ = PerClassClassifier(self.attack_model, self.per_class_, self.seed).fit(F, labels, member)
        self.X_shadow_, self.y_shadow_ = X, y
        return self

    def _cached_train(self, X: np.ndarray, y: np.ndarray, member: np.ndarray, *, seed: int) -> Any:
        if self.cache is None:
            return self._train(X[member], y[member], seed=seed)
        from memberscope.cache import hash_array, make_key

        key = make_key(
            artifact="redteam-shadow",
            recipe=self.recipe.config(),
            X=hash_array(X),
            y=hash_array(y),
            member=hash_array(member),
            seed=seed,
            n_classes=self.n_classes_,
        )
        return self.cache.model(
            key,
            self.recipe,
            n_classes=self.n_classes_,
            feature_shape=tuple(X.shape[1:]),
            train=lambda: self._train(X[member], y[member], seed=seed),
        )

    def _train(self, X: np.ndarray, y: np.ndarray, *, seed: int) -> Any:
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            # Small shadows on few records may not converge; the attack only needs them to fit their data.
            warnings.simplefilter("ignore", ConvergenceWarning)
            return self.recipe.train(X, y, n_classes=self.n_classes_, seed=seed)

    def _use_per_class(self, labels: np.ndarray, member: np.ndarray) -> bool:
        return use_per_class(self.per_class, labels, member, self.min_per_class)

    def score_observed(self, observed: np.ndarray, y: np.ndarray, *, kind: str = "probabilities") -> np.ndarray:
        """Scores ``(n,)`` of already observed outputs ``(n, n_classes)`` of output kind ``kind``, with labels ``y``."""
        if not hasattr(self, "classifier_"):
            raise InvalidInputError("the shadow attack must be fit before it scores")
        F = shadow_features(observed, np.asarray(y), n_sorted=self.n_sorted, kind=kind)
        return self.classifier_.score(F, np.asarray(y))

    def score(self, target: Target, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Query ``target`` once per record and score; ``(n,)``, higher = more likely member."""
        observed = target.query(np.asarray(X))
        return self.score_observed(observed, y, kind=target.output_kind)

    def params(self) -> dict[str, Any]:
        return {
            "n_shadow": self.n_shadow,
            "recipe": self.recipe.config(),
            "attack_model": self.attack_model,
            "per_class": getattr(self, "per_class_", self.per_class),
            "postprocess": self.postprocess,
            "n_sorted": self.n_sorted,
            "seed": self.seed,
        }
