"""Ensembles: ``ensemble`` models trained on disjoint subsets of the training records, their probabilities averaged.

By parallel composition each record influences one member only; with DP-SGD the ensemble is as private as its least
private member.
"""

from __future__ import annotations

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.training.defenses._base import TrainingDefense, register
from memberscope.training.options import Interval, Option

__all__ = ["Ensemble"]


@register
class Ensemble(TrainingDefense):
    name = "ensemble"
    options = (Option("ensemble", 1, Interval(1, integer=True), meaning="models"),)
    option, preset = "ensemble", 4
    wraps = True

    def around(self, train_one, X, y, *, n_classes: int, seed: int, progress):
        """A :class:`~memberscope.training.loop.TrainedEnsemble` of ``ensemble`` members, member ``j`` trained by
        ``train_one`` (with ``ensemble=1``) on the ``j``-th of a seeded split of ``X`` (n, ...) into disjoint parts."""
        from memberscope.game import derive_seed
        from memberscope.training.loop import TrainedEnsemble

        n_members = int(self.recipe.ensemble)
        if len(X) < 2 * n_members:
            raise InvalidInputError(
                f"an ensemble of {n_members} models on disjoint subsets needs at least {2 * n_members} training "
                f"records; got {len(X)}"
            )
        member_recipe = self.recipe.replace(ensemble=1)
        order = np.random.default_rng(derive_seed(seed, "ensemble-split")).permutation(len(X))
        members = []
        for j, part in enumerate(np.array_split(order, n_members)):
            part = np.sort(part)
            members.append(
                train_one(member_recipe, X[part], y[part], n_classes=n_classes, seed=derive_seed(seed, "ensemble", j))
            )
        if progress is not None:
            for _ in range(self.recipe.epochs):
                progress()
        return TrainedEnsemble(members)
