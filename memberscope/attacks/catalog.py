"""Every registered attack in one list: what it does, the access it needs, and the paper it follows.

Read from the registries (:data:`memberscope.attacks.ATTACKS` and
:data:`memberscope.llm.attacks.LLM_ATTACKS`), so a newly registered attack is listed without editing this.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["AttackEntry", "catalog"]

# The kinds of access a listing names (issue 18's vocabulary), from least to most.
ACCESS_LABELS = "API labels"
ACCESS_SCORES = "API probabilities (or logits)"
ACCESS_LM = "LM weights (token log-probabilities)"
ACCESS_LM_VOCAB = "LM weights (full next-token distribution)"

CLASSIFIER_COMMANDS = "audit, audit-model, defend"
REDTEAM_ATTACKS = ("shadow", "label-only")  # what `memberscope attack --attack` runs against an endpoint
LM_COMMANDS = "llm-audit, llm-demo"


@dataclass(frozen=True)
class AttackEntry:
    """One attack as a listing shows it.

    Attributes
    ----------
    name : str
        Its registry name (what ``--attacks`` takes).
    family : {"classifier", "language model"}
    summary : str
        One line: what the score is.
    access : str
        What of the target it needs: API labels, API probabilities, LM weights.
    needs : str
        What else: reference models, population records, a reference LM ("" when nothing).
    paper : str
        The paper followed.
    commands : str
        The commands that run it.
    """

    name: str
    family: str
    summary: str
    access: str
    needs: str
    paper: str
    commands: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _classifier_entries() -> list[AttackEntry]:
    from memberscope.attacks import ATTACKS, needs

    out = []
    for name in ATTACKS.names():
        cls = ATTACKS.get(name)
        need = needs(name)
        access = ACCESS_LABELS if need.outputs == "label" else ACCESS_SCORES
        access += ", queries of perturbed records" if need.queries else ", one query per record"
        extra = []
        if need.reference_models:
            k = need.reference_models
            extra.append(f"at least {k} reference model{'s' if k > 1 else ''}")
        if need.population:
            extra.append("population records")
        commands = CLASSIFIER_COMMANDS + (", attack (an endpoint)" if name in REDTEAM_ATTACKS else "")
        out.append(
            AttackEntry(
                name=name,
                family="classifier",
                summary=(cls.__doc__ or "").strip().splitlines()[0].replace("``", ""),
                access=access,
                needs=", ".join(extra),
                paper=cls.paper,
                commands=commands,
            )
        )
    return out


def _lm_entries() -> list[AttackEntry]:
    from memberscope.llm.attacks import LLM_ATTACKS

    passes = {"lowercase": "a second pass on the lowercased text", "reference": "a reference LM"}
    out = []
    for name in LLM_ATTACKS.names():
        cls = LLM_ATTACKS.get(name)
        out.append(
            AttackEntry(
                name=name,
                family="language model",
                summary=cls.summary,
                access=ACCESS_LM_VOCAB if "vocab" in cls.needs else ACCESS_LM,
                needs=", ".join(passes[p] for p in sorted(cls.needs) if p in passes),
                paper=cls.paper,
                commands=LM_COMMANDS,
            )
        )
    return out


def catalog() -> list[AttackEntry]:
    """Every registered attack: the classifier attacks first, then the language-model attacks."""
    return _classifier_entries() + _lm_entries()
