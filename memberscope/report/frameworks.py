"""What a run measured, mapped to the frameworks privacy and security reviewers work with.

Each framework is one :class:`Framework` in :data:`FRAMEWORKS` (adding one means adding one entry): its item, the
source it is quoted from, and a function from the run's :class:`Facts` to a :class:`FrameworkRow` — what the audit
measured for that item, what it did not measure, and what a reviewer should do next. The rows are guidance for a
reviewer, not a compliance determination or legal advice: each names its source so the reviewer can check the
current text.

The sources (as of 2025):

- MITRE ATLAS, technique AML.T0024 "Exfiltration via AI Inference API", sub-technique AML.T0024.000
  "Infer Training Data Membership" (https://atlas.mitre.org/techniques/AML.T0024.000).
- OWASP Machine Learning Security Top Ten (2023), ML04:2023 "Membership Inference Attack"
  (https://owasp.org/www-project-machine-learning-security-top-10/docs/ML04_2023-Membership_Inference_Attack).
- OWASP Top 10 for LLM Applications (2025), LLM02:2025 "Sensitive Information Disclosure" (LLM06 in the 2023 list)
  (https://genai.owasp.org/llmrisk/llm022025-sensitive-information-disclosure/).
- Regulation (EU) 2024/1689 (the AI Act), Article 10 "Data and data governance" and Article 15 "Accuracy,
  robustness and cybersecurity" (https://eur-lex.europa.eu/eli/reg/2024/1689/oj).
- Regulation (EU) 2016/679 (GDPR), Article 35 "Data protection impact assessment"
  (https://eur-lex.europa.eu/eli/reg/2016/679/oj), read with EDPB Opinion 28/2024 on AI models, which counts a
  model's resistance to attacks such as membership inference among the evidence of whether personal data can be
  obtained from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memberscope.results.risk import distinguishable

__all__ = ["DISCLAIMER", "FRAMEWORKS", "Facts", "Framework", "FrameworkRow", "facts_of", "framework_rows"]

DISCLAIMER = (
    "Guidance for reviewers, not a compliance determination or legal advice: it maps what this run measured to "
    "each framework's item, names the source, and says what the run did not measure. Check the current text of "
    "each source; whether an item applies to your system is your organisation's call."
)


@dataclass
class FrameworkRow:
    """One framework item as this run bears on it."""

    framework: str
    item: str
    source: str
    url: str
    measured: str
    not_measured: list[str]
    next_steps: list[str]


@dataclass
class Facts:
    """What the rows are written from: the run's headline and everything that may make it understate leakage.

    ``verdict`` is "measurable" (the run's risk level, :meth:`~memberscope.results.schema.Results.risk`, is
    ``high`` or ``elevated``: some attack tells members apart, by a TPR, AUC or ε interval above chance), "not
    distinguishable" (it is not), or "no ground truth" (a run without attack metrics, e.g. a red-team run).
    It is derived from the same risk assessment as the headline, so no framework text can contradict it;
    ``risk_reason`` is that assessment's reason.
    """

    kind: str
    subject: str
    summary: str
    verdict: str
    strongest: str | None = None
    fpr: float | None = None
    tpr: float | None = None
    auc: float | None = None
    attacks: list[str] = field(default_factory=list)
    n_members: int | None = None
    n_nonmembers: int | None = None
    n_reference_models: int = 0
    test_accuracy: float | None = None
    low_fidelity: bool = False
    claimed_epsilon: float | None = None
    empirical_epsilon: float | None = None
    epsilon_alarm: bool = False
    hot_slices: list[str] = field(default_factory=list)
    defense: str | None = None
    risk_level: str | None = None
    risk_reason: str | None = None

    @property
    def measurable(self) -> bool:
        return self.verdict == "measurable"

    def headline(self) -> str:
        if self.strongest is None or self.fpr is None or self.tpr is None:
            return self.summary
        text = (
            f"the strongest of {len(self.attacks)} attacks ({self.strongest}) identified {_pct(self.tpr)} of members "
            f"at {_pct(self.fpr)} false positives (chance: {_pct(self.fpr)})"
        )
        if self.auc is not None:
            text += f", AUC {self.auc:.3f}"
        if self.n_members is not None and self.n_nonmembers is not None:
            text += f", on {self.n_members} members and {self.n_nonmembers} non-members"
        return text + f" — {self.verdict_text()}"

    def verdict_text(self) -> str:
        return {
            "measurable": "leakage is measurable"
            + (
                f", risk {self.risk_level}: {self.risk_reason}"
                if self.risk_reason
                else " (a 95% interval lies above chance)"
            ),
            "not distinguishable": "not distinguishable from chance in this audit, which is NOT evidence that the "
            "model does not leak (stronger attacks or more records may find leakage)",
        }.get(self.verdict, "no membership ground truth to score against")

    def caveats(self) -> list[str]:
        """What may make this run's figures understate leakage (always listed under "not measured")."""
        out = []
        if self.n_reference_models == 0 and self.kind == "audit":
            out.append(
                "attacks with reference models (LiRA, RMIA): only reference-free attacks ran, and these are "
                "usually much weaker at low FPR — the figures may understate leakage"
            )
        if self.low_fidelity:
            out.append(
                "a faithful attacker: the reference models failed the fidelity check, so reference-model attacks "
                "may understate leakage"
            )
        if self.kind == "audit" and "label-only" not in self.attacks:
            out.append("an attacker who sees predicted labels only (the label-only attack was not run)")
        return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x >= 0.001 or x == 0 else f"{100 * x:.2g}%"


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) else None


def facts_of(model: Any) -> Facts:
    """The :class:`Facts` of a :class:`~memberscope.report.model.ReportModel`."""
    results = model.results
    key, best = model.headline_fpr, model.strongest
    facts = Facts(
        kind=model.kind,
        subject=model.subject,
        summary=model.summary,
        verdict="no ground truth",
        attacks=[r.name for r in model.attack_rows],
        n_members=results.game.n_members,
        n_nonmembers=results.game.n_nonmembers,
        n_reference_models=int(results.game.n_reference_models or 0),
        test_accuracy=_num(results.target.test_accuracy),
        low_fidelity=(results.sections.get("fidelity") or {}).get("passed") is False,
        claimed_epsilon=None if model.claimed is None else model.claimed["epsilon"],
        epsilon_alarm=any(d.alarm for d in model.defenses),
        hot_slices=list(model.hot_slices),
        defense=(model.defense_recommendation or {}).get("defense"),
    )
    bounds = [r.epsilon for r in model.attack_rows if r.epsilon is not None]
    facts.empirical_epsilon = max(bounds) if bounds else None
    one_run = [r.one_run["epsilon"] for r in model.attack_rows if r.one_run and _num(r.one_run.get("epsilon"))]
    if model.claimed is not None and any(b > model.claimed["epsilon"] for b in [*bounds, *one_run]):
        facts.epsilon_alarm = True
    if best is not None and key is not None:
        row = next(r for r in model.attack_rows if r.name == best)
        facts.strongest, facts.fpr, facts.tpr, facts.auc = best, float(key), row.tprs.get(key), row.auc
        risk = results.risk()
        facts.verdict = "measurable" if distinguishable(risk) else "not distinguishable"
        facts.risk_level, facts.risk_reason = risk.level, risk.reason
    return facts


# ------------------------------------------------------------------------------------------------ the frameworks


@dataclass(frozen=True)
class Framework:
    """One framework item: its name, the source it is quoted from, and how a run bears on it (``row``)."""

    framework: str
    item: str
    source: str
    url: str
    row: Callable[[Framework, Facts], tuple[str, list[str], list[str]]]

    def apply(self, facts: Facts) -> FrameworkRow:
        measured, not_measured, next_steps = self.row(self, facts)
        return FrameworkRow(
            framework=self.framework,
            item=self.item,
            source=self.source,
            url=self.url,
            measured=measured,
            not_measured=not_measured,
            next_steps=next_steps,
        )


def _leak_steps(f: Facts) -> list[str]:
    """The steps every framework shares, most urgent first."""
    steps = []
    if f.epsilon_alarm:
        steps.append(
            "An empirical ε lower bound exceeds the claimed ε: do not rely on the DP guarantee until the DP training "
            "and its accounting are explained."
        )
    if f.low_fidelity:
        steps.append("Rebuild the reference models like the target (same family and hyperparameters) and re-audit.")
    if f.measurable:
        steps.append(
            "Compare mitigations on the privacy–utility frontier (`memberscope defend`: regularization, early "
            "stopping, DP-SGD, output rounding or labels only)"
            + (f"; the defend run recommended: {f.defense}." if f.defense else ".")
        )
    elif f.verdict == "not distinguishable":
        steps.append(
            "Do not read this as 'safe': re-audit with more reference models (stronger attacks) and more records, "
            "and after every change to the data or the training."
        )
    return steps


def _atlas(fw: Framework, f: Facts) -> tuple[str, list[str], list[str]]:
    measured = (
        f"This run played the technique against {f.subject}: an adversary with query access to the model's "
        f"outputs infers whether a record was in its training data; {f.headline()}."
    )
    not_measured = [
        *f.caveats(),
        "the other AML.T0024 sub-techniques: model inversion (AML.T0024.001) and model extraction (AML.T0024.002)",
        "how an adversary reaches the inference API (access control, reconnaissance) and the deployed output "
        "policy, unless this was a red-team run against the API itself",
    ]
    steps = _leak_steps(f)
    steps.append(
        "Treat the inference API as an exfiltration channel: expose labels or rounded top-k scores, rate-limit and "
        "monitor queries for probing (`memberscope serve`), and audit the API as deployed (`memberscope recon`, "
        "`memberscope attack`)."
    )
    return measured, not_measured, steps


def _owasp_ml(fw: Framework, f: Facts) -> tuple[str, list[str], list[str]]:
    measured = f"Membership inference against {f.subject}: {f.headline()}."
    if f.claimed_epsilon is not None and f.empirical_epsilon is not None:
        measured += (
            f" Claimed ε = {f.claimed_epsilon:g}; empirical ε lower bound {f.empirical_epsilon:.2f} (95% confidence)."
        )
    not_measured = [
        *f.caveats(),
        "the neighbouring items ML03:2023 (model inversion) and ML05:2023 (model theft)",
    ]
    steps = _leak_steps(f)
    steps.append(
        "ML04's prevention measures (regularization, less complex models, noise or differential privacy, limited "
        "access to predictions) are each measurable with `memberscope defend`; record the chosen one and its "
        "measured effect."
    )
    return measured, not_measured, steps


def _owasp_llm(fw: Framework, f: Facts) -> tuple[str, list[str], list[str]]:
    if f.kind in ("llm", "dataset-inference"):
        measured = (
            f"Whether {f.subject} reveals which texts it was trained on (membership of member texts and inserted "
            f"canaries): {f.headline()}."
        )
        not_measured = [
            "verbatim extraction of training text by prompting (regurgitation), personal data in generated output, "
            "system-prompt leakage and retrieval (RAG) data leakage",
        ]
    else:
        measured = (
            f"Not applicable as measured: this run audited {f.subject}, not a language model. If the model is part "
            f"of an LLM application (a classifier or scorer in its pipeline), the finding is: {f.headline()}."
        )
        not_measured = [
            "disclosure by the language model itself (regurgitation of training text, personal data in output, "
            "system-prompt or retrieval leakage): audit it with `memberscope llm-audit`",
        ]
    steps = _leak_steps(f)
    steps.append(
        "Sanitize and deduplicate training text that holds personal data, filter outputs, and repeat the canary "
        "audit after each fine-tuning run."
    )
    return measured, not_measured, steps


def _ai_act_10(fw: Framework, f: Facts) -> tuple[str, list[str], list[str]]:
    measured = (
        f"How much the released model reveals about who is in its training data, a property of how that data is "
        f"protected: {f.headline()}."
    )
    if f.hot_slices:
        measured += f" Leakage concentrates in {', '.join(f.hot_slices)}."
    not_measured = [
        *f.caveats(),
        "data quality, relevance, representativeness and bias examination (Art. 10(2)–(4)), and the lawfulness of "
        "collecting the data",
    ]
    steps = [
        *_leak_steps(f),
        "Keep this audit with the data-governance records of the technical documentation; where special "
        "categories of personal data are processed (Art. 10(5)), cite it among the safeguards' evidence and "
        "re-audit whenever the training data changes.",
    ]
    return measured, not_measured, steps


def _ai_act_15(fw: Framework, f: Facts) -> tuple[str, list[str], list[str]]:
    measured = f"Resilience to one confidentiality attack (Art. 15(5)), membership inference: {f.headline()}."
    if f.test_accuracy is not None:
        measured += f" The target's accuracy on held-out records was {_pct(f.test_accuracy)}."
    not_measured = [
        *f.caveats(),
        "the other attacks Art. 15(5) names — data poisoning, model poisoning, adversarial examples (evasion), "
        "other confidentiality attacks (model inversion, extraction) — and robustness to errors and faults",
    ]
    steps = [
        *_leak_steps(f),
        "Put a leakage budget into the release pipeline (`memberscope gate --max-tpr-at-fpr 0.01:BUDGET`) so a "
        "model that leaks more cannot ship, and keep the evidence bundle (`memberscope report --format evidence`).",
    ]
    return measured, not_measured, steps


def _gdpr_35(fw: Framework, f: Facts) -> tuple[str, list[str], list[str]]:
    measured = (
        f"The likelihood side of one risk to data subjects, that someone holding the model learns whether a "
        f"person's record was used to train it (Art. 35(7)(c)): {f.headline()}."
    )
    not_measured = [
        *f.caveats(),
        "the severity of that disclosure, which depends on what membership in this data set reveals about a person",
        "other ways personal data can be obtained from the model (attribute inference, reconstruction, "
        "extraction), and the necessity, proportionality and legal basis of the processing (Art. 35(7)(a)–(b))",
    ]
    steps = [
        *_leak_steps(f),
        "In the DPIA, record the measured TPR at low FPR as the likelihood of membership disclosure, assess its "
        "severity for this population, list the mitigations with their measured effect and the residual risk "
        "(Art. 35(7)(d)), and consult the data protection officer. EDPB Opinion 28/2024 counts resistance to "
        "membership inference among the evidence of whether a model is anonymous.",
    ]
    return measured, not_measured, steps


FRAMEWORKS: tuple[Framework, ...] = (
    Framework(
        "MITRE ATLAS",
        "AML.T0024.000 Infer Training Data Membership (technique AML.T0024 Exfiltration via AI Inference API)",
        "MITRE ATLAS",
        "https://atlas.mitre.org/techniques/AML.T0024.000",
        _atlas,
    ),
    Framework(
        "OWASP Machine Learning Security Top Ten",
        "ML04:2023 Membership Inference Attack",
        "OWASP Machine Learning Security Top Ten (2023)",
        "https://owasp.org/www-project-machine-learning-security-top-10/docs/ML04_2023-Membership_Inference_Attack",
        _owasp_ml,
    ),
    Framework(
        "OWASP Top 10 for LLM Applications",
        "LLM02:2025 Sensitive Information Disclosure (LLM06 in the 2023 list)",
        "OWASP Top 10 for LLM Applications (2025)",
        "https://genai.owasp.org/llmrisk/llm022025-sensitive-information-disclosure/",
        _owasp_llm,
    ),
    Framework(
        "EU AI Act",
        "Article 10 Data and data governance",
        "Regulation (EU) 2024/1689, Article 10",
        "https://eur-lex.europa.eu/eli/reg/2024/1689/oj",
        _ai_act_10,
    ),
    Framework(
        "EU AI Act",
        "Article 15 Accuracy, robustness and cybersecurity",
        "Regulation (EU) 2024/1689, Article 15",
        "https://eur-lex.europa.eu/eli/reg/2024/1689/oj",
        _ai_act_15,
    ),
    Framework(
        "GDPR",
        "Article 35 Data protection impact assessment (DPIA)",
        "Regulation (EU) 2016/679, Article 35; EDPB Opinion 28/2024",
        "https://eur-lex.europa.eu/eli/reg/2016/679/oj",
        _gdpr_35,
    ),
)
"""Every framework item the report maps a run to, in the order the report shows them."""


def framework_rows(model: Any) -> list[FrameworkRow]:
    """One :class:`FrameworkRow` per item of :data:`FRAMEWORKS` for a
    :class:`~memberscope.report.model.ReportModel`."""
    facts = facts_of(model)
    return [fw.apply(facts) for fw in FRAMEWORKS]
