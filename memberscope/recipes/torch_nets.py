"""PyTorch recipes: MLP, small CNN and logistic regression, trained by :mod:`memberscope.training`.

:class:`TorchRecipe` holds the hyperparameters (declared, with their defaults and constraints, in
:mod:`memberscope.training.options` and by each training-time defense in :mod:`memberscope.training.defenses`);
training goes through the one training loop, and the trained networks become :class:`TorchModel` (or, for the
``ensemble`` defense, :class:`EnsembleModel`) objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.recipes._base import Recipe
from memberscope.targets import Target, TorchTarget
from memberscope.training.defenses import option_defaults, recipe_options, recipe_problems
from memberscope.training.defenses.coarsen import coarsen_features
from memberscope.training.options import CORE_OPTIONS

__all__ = ["EnsembleModel", "TorchModel", "TorchRecipe"]


class TorchRecipe(Recipe):
    """Train a torch network with minibatch Adam/SGD on cross-entropy (:func:`memberscope.training.train`).

    Every keyword is an option declared once, with its default and constraint: the network and optimizer
    (``architecture`` in {"mlp", "cnn", "logreg"}, ``hidden``, ``channels``, ``epochs``, ``batch_size``, ``lr``,
    ``weight_decay``, ``momentum``, ``optimizer`` in {"adam", "sgd"}, ``dropout``, ``standardize``:
    :data:`memberscope.training.options.CORE_OPTIONS`) and those of each registered training-time defense
    (``l1``, ``label_smoothing``, ``early_stopping``/``validation_fraction``, ``augment*``, ``ensemble``,
    ``coarsen``, ``dp_epsilon``/``dp_delta``/``max_grad_norm``/``dp_physical_batch``, ...:
    :mod:`memberscope.training.defenses`). ``standardize`` fits a per-feature mean/std on the training records and
    applies it inside the model (useful for raw tables). The options are attributes (``recipe.epochs``).

    Raises
    ------
    InvalidInputError
        Naming every unknown option, bad value and refused combination at once.
    """

    name = "torch"

    def __init__(self, **options: Any):
        declared = {o.name: o for o in recipe_options()}
        problems: list[str] = []
        unknown = sorted(set(options) - set(declared))
        if unknown:
            problems.append(
                f"unknown option(s) {', '.join(map(repr, unknown))}; expected some of: {', '.join(declared)}"
            )
        values: dict[str, Any] = {}
        for key, option in declared.items():
            value = options.get(key, option.default)
            if key in options and option.convert is not None:
                try:
                    value = option.convert(value)
                except (TypeError, ValueError):
                    problems.append(f"{key} must be a list of integers; got {value!r}")
            values[key] = value
        problems += recipe_problems(values)
        if problems:
            raise InvalidInputError("invalid torch recipe: " + "; ".join(problems))
        self.__dict__.update(values)

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...  # the declared options

    def options(self) -> dict[str, Any]:
        """Every option's value, by name (declaration order)."""
        return {o.name: getattr(self, o.name) for o in recipe_options()}

    def replace(self, **changes: Any) -> TorchRecipe:
        """A copy with ``changes`` applied (validated like a new recipe)."""
        return type(self)(**{**self.options(), **changes})

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.options() == other.options()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        return f"TorchRecipe({', '.join(f'{k}={v!r}' for k, v in self.config().items() if k != 'name')})"

    def config(self) -> dict[str, Any]:
        """The core options always; a defense's options only when not at their defaults, so recipes without
        defenses keep their cache keys, and any defense that is on is part of every cache key."""
        core = {o.name for o in CORE_OPTIONS}
        defaults = option_defaults()
        cfg: dict[str, Any] = {}
        for key, value in self.options().items():
            if key in core or value != defaults[key]:
                cfg[key] = list(value) if isinstance(value, tuple) else value
        cfg["name"] = self.name
        return cfg

    def train(self, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int, progress: Any = None) -> Target:
        from memberscope.training import train

        return self.model(train(self, X, y, n_classes=n_classes, seed=seed, progress=progress), n_classes=n_classes)

    def model(self, trained, *, n_classes: int) -> Target:
        """The :class:`TorchModel` of a :class:`~memberscope.training.TrainedNetwork` (an :class:`EnsembleModel`
        of a :class:`~memberscope.training.TrainedEnsemble`), as :func:`memberscope.training.train` and
        :func:`memberscope.training.train_vectorized` return them."""
        from memberscope.training import TrainedEnsemble

        if isinstance(trained, TrainedEnsemble):
            members = [self._torch_model(m, n_classes=n_classes) for m in trained.members]
            return EnsembleModel(members, n_classes=n_classes)
        return self._torch_model(trained, n_classes=n_classes)

    def _torch_model(self, trained, *, n_classes: int) -> TorchModel:
        model = TorchModel(
            trained.net,
            n_classes=n_classes,
            mean=trained.mean,
            std=trained.std,
            privacy=trained.privacy,
            coarsen=self.coarsen,
        )
        model.epochs_run = trained.epochs_run
        return model

    def load(self, path: Path, *, n_classes: int, feature_shape: tuple[int, ...]) -> Target:
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        if "ensemble" in state:
            members = [self._model_from_state(s, feature_shape, n_classes) for s in state["ensemble"]]
            model = EnsembleModel(members, n_classes=n_classes)
            model.privacy = state.get("privacy")
            return model
        return self._model_from_state(state, feature_shape, n_classes)

    def _model_from_state(self, state, feature_shape, n_classes) -> TorchModel:
        from memberscope.training.networks import build_network

        net = build_network(self, tuple(feature_shape), n_classes)
        net.load_state_dict(state["net"])
        net.eval()
        model = TorchModel(net, n_classes=n_classes, mean=state["mean"], std=state["std"], coarsen=self.coarsen)
        model.privacy = state.get("privacy")
        return model


class TorchModel(TorchTarget):
    """A network trained by :class:`TorchRecipe` (in eval mode) plus its input preprocessing; answers logits."""

    n_classes: int  # always known: the recipe built the network's output layer

    def __init__(self, net, *, n_classes: int, mean, std, privacy: dict[str, Any] | None = None, coarsen: float = 0.0):
        super().__init__(net, n_classes=n_classes, output_kind="logits")
        self.mean, self.std = mean, std
        #: Grid step the features are rounded to before the network sees them (data minimization); 0 = off.
        self.coarsen = coarsen
        #: DP-SGD accounting (epsilon, delta, steps, ...) when trained with DP-SGD, else None.
        self.privacy = privacy
        #: Epochs actually run (fewer than the recipe's when early stopping stopped it); None when loaded.
        self.epochs_run: int | None = None

    @property
    def description(self) -> str:
        return "memberscope torch model"

    def _forward(self, batch):
        batch = coarsen_features(batch, self.coarsen)
        if not _is_identity(self.mean, self.std):  # (x - 0) / 1 is x to the bit: two passes over the records saved
            batch = (batch - self.mean) / self.std
        return self.net(batch)

    def save(self, path: Path) -> None:
        import torch

        state = {"net": self.net.state_dict(), "mean": self.mean, "std": self.std}
        if self.privacy is not None:
            state["privacy"] = self.privacy
        torch.save(state, path)


def _is_identity(mean, std) -> bool:
    """Whether standardizing by ``mean`` and ``std`` (tensors) changes nothing: one element each, 0 and 1."""
    return mean.numel() == 1 and std.numel() == 1 and float(mean) == 0.0 and float(std) == 1.0


class EnsembleModel(Target):
    """Models trained on disjoint subsets; answers ``log(mean_j softmax(z_j))`` (log of the averaged probabilities)."""

    output_kind = "logits"

    def __init__(self, members: list[TorchModel], *, n_classes: int):
        super().__init__()
        if not members:
            raise InvalidInputError("an ensemble needs at least one model")
        self.members, self.n_classes = members, n_classes
        eps = [getattr(m, "privacy", None) for m in members]
        # Disjoint subsets: by parallel composition the ensemble is as private as its least private member.
        self.privacy = max((p for p in eps if p), key=lambda p: p["epsilon"], default=None)

    def _query(self, X: np.ndarray) -> np.ndarray:
        from scipy.special import logsumexp

        from memberscope.signals import log_probabilities
        from memberscope.targets.outputs import query_logits

        logp = np.stack([log_probabilities(query_logits(m, X)) for m in self.members])
        self.queries_spent += len(X)
        return (logsumexp(logp, axis=0) - np.log(len(self.members))).astype(np.float32)

    def save(self, path: Path) -> None:
        import torch

        torch.save(
            {
                "ensemble": [{"net": m.net.state_dict(), "mean": m.mean, "std": m.std} for m in self.members],
                "privacy": self.privacy,
            },
            path,
        )
