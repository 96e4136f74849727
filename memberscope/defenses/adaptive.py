"""The attacker an output defense is measured against: what they can undo, average away, or buy with queries.

An output defense is only as strong as its weakest view. For every output policy (:mod:`memberscope.targets.
postprocess`) :func:`attacker_views` lists the views an attacker who knows the policy can obtain, each a
post-processor applied to the target **and** to the attacker's reference models, and ``memberscope defend`` takes a
defense's leakage as the strongest attack over all of them:

- **as shown**: the policy's answers, one query per record;
- **undone**: an invertible step (``temperature:T``, :data:`INVERSES`) undone by its inverse: the attacker applies
  ``temperature:1/T`` to what it sees, recovering the logit differences the step preserves; a policy of invertible
  steps only is then exactly the undefended model (Carlini et al., "Membership Inference Attacks From First
  Principles", S&P 2022, §VI: defenses that merely rescale outputs do not protect);
- **averaged over m queries**: a policy that draws fresh noise per answer (``stochastic``), asked ``m`` times per
  record and averaged (:class:`~memberscope.targets.postprocess.Averaged`), for each ``m`` of ``repeats`` (by
  default up to the gateway's own repeat-detection threshold, 20: an attacker below it is not even flagged);
- **label-only, q queries**: a policy that shows labels only, attacked by the label-only attack (Choquette-Choo et
  al., ICML 2021) with ``q`` perturbed queries per record, for each ``q`` of ``label_queries``: the leakage as a
  function of the attacker's query budget.

Coarse outputs give many tied scores; :func:`break_ties` orders tied records at random before the metrics are
read, which is the attacker randomizing among tied records and equals, in expectation, the TPR interpolated along
the ROC segment of the tied records (a TPR at a fixed FPR read without interpolation understates coarse outputs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memberscope.targets.postprocess import (
    Averaged,
    Compose,
    OutputPostprocessor,
    Temperature,
    as_postprocessor,
)

__all__ = [
    "DEFAULT_LABEL_QUERIES",
    "DEFAULT_REPEATS",
    "INVERSES",
    "AttackerView",
    "attacker_views",
    "averaged_name",
    "break_ties",
]

DEFAULT_REPEATS = (1, 10, 20, 100)
"""Queries per record an averaging attacker makes: up to the gateway's ``probing.repeat_threshold`` (20), the most an
attacker can repeat unflagged, and 100 for one who spreads repeats over keys or addresses."""

DEFAULT_LABEL_QUERIES = (16, 64, 256)
"""Perturbed queries per record of the label-only attack against a label-only policy."""

INVERSES: dict[type[OutputPostprocessor], Callable[[Any], OutputPostprocessor]] = {
    Temperature: lambda step: Temperature(1.0 / step.temperature),
}
"""Post-processor type -> the step that undoes it (a registry: an invertible policy added later registers here)."""


@dataclass(frozen=True)
class AttackerView:
    """One view of an output defense an attacker who knows it can obtain.

    Attributes
    ----------
    name : str
        ``"as shown"``, ``"undone"``, ``"averaged over 16"``, ``"label-only, 64 queries"``, ...
    postprocessor : OutputPostprocessor
        What the attacker sees of every model (target and reference models alike).
    budget : dict
        The attacker's cost: ``{"queries_per_record": m}``.
    attacks : tuple of str, optional
        The attacks this view is for (None: all the run's attacks).
    attack_params : dict
        Overrides of the attacks' parameters (``{"label-only": {"n_queries": 64}}``).
    assumes : str
        What the view assumes the attacker can do, in words.
    """

    name: str
    postprocessor: OutputPostprocessor
    budget: dict[str, int]
    attacks: tuple[str, ...] | None = None
    attack_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    assumes: str = ""

    def key(self, attack: str) -> str:
        """How ``attack`` under this view is named in a defense's attacks: bare for the view as shown,
        :func:`averaged_name` for an averaging view, ``"attack [view]"`` otherwise."""
        if self.name == "as shown":
            return attack
        if self.name.startswith("averaged over "):
            return averaged_name(attack, self.budget["queries_per_record"])
        return f"{attack} [{self.name}]"


def averaged_name(attack: str, repeats: int) -> str:
    """The name of ``attack`` run by an attacker who averages ``repeats`` answers to each query."""
    return f"{attack} (averaging {repeats} queries)"


def _steps(post: OutputPostprocessor) -> list[OutputPostprocessor]:
    return list(post.steps) if isinstance(post, Compose) else [post]


def inverses(post: OutputPostprocessor) -> list[OutputPostprocessor]:
    """The steps that undo ``post``'s invertible steps, in the order to apply them (last step first)."""
    return [INVERSES[type(s)](s) for s in reversed(_steps(post)) if type(s) in INVERSES]


def invertible_only(post: OutputPostprocessor) -> bool:
    """Whether every step of ``post`` is invertible (then it hides nothing from an attacker who knows it)."""
    steps = _steps(post)
    return bool(steps) and all(type(s) in INVERSES for s in steps)


def attacker_views(
    policy: str | OutputPostprocessor,
    *,
    repeats: Sequence[int] = DEFAULT_REPEATS,
    label_queries: Sequence[int] = DEFAULT_LABEL_QUERIES,
    default_label_queries: int = 16,
) -> list[AttackerView]:
    """The views of ``policy`` an adaptive attacker obtains (module docstring); the first is "as shown".

    Parameters
    ----------
    policy : str or OutputPostprocessor
        The output defense (``"temperature:2,round:2"``).
    repeats : sequence of int
        Queries per record of the averaging attacker (used when ``policy`` draws fresh noise per answer).
    label_queries : sequence of int
        Query budgets of the label-only attack (used when ``policy`` shows labels only).
    default_label_queries : int
        The label-only attack's budget in every other view (the run's ``label_only_queries``).

    Returns
    -------
    list of AttackerView
    """
    policy = as_postprocessor(policy)
    undo = inverses(policy)

    def undone(post: OutputPostprocessor) -> OutputPostprocessor:
        return Compose([post, *undo]) if undo else post

    # Labels only: the view as shown already runs the label-only attack at the run's budget (its perturbed copies
    # plus the record itself), so that is its cost, and the budgets below are the other ones.
    shown_cost = default_label_queries + 1 if policy.granularity == "label" else 1
    views = [
        AttackerView(
            "as shown", policy, {"queries_per_record": shown_cost}, assumes="sees the answers the policy gives"
        )
    ]
    if undo:
        views.append(
            AttackerView(
                "undone",
                undone(policy),
                {"queries_per_record": 1},
                assumes="knows the policy and applies the inverse of its invertible steps ("
                + ", ".join(s.spec for s in undo)
                + ")",
            )
        )
    if policy.stochastic:
        for m in sorted({int(m) for m in repeats if int(m) > 1}):
            views.append(
                AttackerView(
                    f"averaged over {m}",
                    undone(Averaged(policy, m)),
                    {"queries_per_record": m},
                    assumes=f"asks every record {m} times and averages the fresh noise away",
                )
            )
    elif policy.granularity == "label":
        for q in sorted({int(q) for q in label_queries if int(q) != default_label_queries}):
            views.append(
                AttackerView(
                    f"label-only, {q} queries",
                    policy,
                    {"queries_per_record": q + 1},
                    attacks=("label-only",),
                    attack_params={"label-only": {"n_queries": q}},
                    assumes=f"asks {q} perturbed copies of every record",
                )
            )
    return views


def break_ties(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``scores`` (n,) with tied records put in a random order, every other order kept.

    Returns the dense rank of each score plus a uniform draw in [0, 0.5): distinct scores keep their order, tied
    ones are ordered at random. The TPR at a fixed FPR of the result is, in expectation, the TPR interpolated
    linearly between the ROC points around the tied group (an attacker flipping a coin among tied records);
    without ties nothing changes.
    """
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=np.float64)
    return rankdata(scores, method="dense").astype(np.float64) + rng.uniform(0.0, 0.5, size=scores.shape)
