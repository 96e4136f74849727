"""What the confidence intervals of a run are: the method each interval used, read from results.json.

Every metric's interval records its method (``auc_ci_method``, ``tpr_at_fpr_ci_method`` per FPR,
``advantage_ci_method``; :class:`memberscope.metrics.AttackMetrics`). :func:`interval_note` turns them into the one
sentence every report format (HTML, Markdown, model card) prints, so a report never names a method the run did not
use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["METHOD_NAMES", "interval_methods", "interval_note"]

METHOD_NAMES = {
    "bootstrap": "stratified percentile bootstrap",
    "wilson-worst-case-variance": "Wilson-type interval with the worst-case variance of the AUC",
    "order-statistics-clopper-pearson": "order statistics with Clopper–Pearson bounds",
    "dkw": "Dvoretzky–Kiefer–Wolfowitz band",
    "unrecorded": "method not recorded (a results file older than method names)",
}
"""The words for each recorded method name (``memberscope.metrics._intervals``); others are shown as recorded."""


def interval_methods(results: Any) -> dict[str, dict[str, list[str]]]:
    """Per quantity (``AUC``, ``TPR at FPR``, ``advantage``), each method recorded → the attacks (with the FPR for
    TPR intervals) that used it, in the run's order."""
    out: dict[str, dict[str, list[str]]] = {"AUC": {}, "TPR at FPR": {}, "advantage": {}}
    for name, attack in results.attacks.items():
        m = attack.metrics
        out["AUC"].setdefault(str(m.auc_ci_method), []).append(name)
        for key, method in m.tpr_at_fpr_ci_method.items():
            out["TPR at FPR"].setdefault(str(method), []).append(f"{name} at {100 * float(key):g}%")
        out["advantage"].setdefault(str(m.advantage_ci_method), []).append(name)
    return {quantity: methods for quantity, methods in out.items() if methods}


def interval_note(results: Any) -> str | None:
    """One sentence naming the method of every interval in ``results`` (a :class:`~memberscope.results.Results`):
    "95% CIs: AUC by ... ; TPR at FPR by ...". Where attacks used different methods, each method names its
    attacks. None for a run without attack metrics."""
    methods = interval_methods(results)
    if not methods:
        return None
    confidence = results.config.get("confidence") if isinstance(results.config, dict) else None
    level = f"{100 * float(confidence):g}%" if isinstance(confidence, int | float) else "95%"
    parts = []
    for quantity, used in methods.items():
        if len(used) == 1:
            parts.append(f"{quantity}, {METHOD_NAMES.get(next(iter(used)), next(iter(used)))}")
            continue
        each = [f"{METHOD_NAMES.get(method, method)} ({', '.join(who)})" for method, who in used.items()]
        parts.append(f"{quantity}, " + "; ".join(each))
    return f"{level} CIs, per the methods recorded in results.json: " + "; ".join(parts) + "."
