"""What each column of a report means, shown as a tooltip on its header (``<th title=...>``).

Keys are the start of a header's text; the longest matching key wins, so ``TPR @`` explains every
``TPR @ 1.0% FPR`` column and ``shadow TPR`` is not taken for ``TPR``.
"""

from __future__ import annotations

import html
import re

__all__ = ["COLUMN_HELP", "add_column_help", "code_spans", "column_help"]

COLUMN_HELP: dict[str, str] = {
    "attack": "The membership-inference attack (see `memberscope attacks` for what each needs and its paper).",
    "AUC": "Area under the ROC curve: the chance that a random member scores above a random non-member. "
    "0.5 is guessing; the interval is a 95% CI, by the method the report's interval note names.",
    "TPR @": "True-positive rate: the share of training records (members) the attack finds while wrongly "
    "flagging only this share of non-members (the false-positive rate). Chance equals the FPR.",
    "TPR": "True-positive rate at the FPR the report's headline uses: the share of members found.",
    "ε lower bound": "Empirical ε: a differential-privacy ε the model cannot have below (one-sided "
    "Clopper–Pearson bounds on the attack's TPR and FPR, 95% confidence). Higher = more leakage proven; 0 means "
    "this attack proves nothing, not that the model is private.",
    "one-run ε": "ε lower bound from the one-run audit with canaries (Steinke et al. 2023).",
    "one-run ε lower bound": "ε lower bound from the canaries' guesses (Steinke et al. 2023), 95% confidence.",
    "claimed ε": "The ε the training claims (DP-SGD's accountant); an empirical bound above it means the claim is "
    "broken.",
    "empirical ε ≥": "The largest empirical ε lower bound over the attacks on this defense.",
    "k+": "Canaries the attack guessed were included (members).",
    "k−": "Canaries the attack guessed were left out (non-members).",
    "correct / guesses": "How many of the attack's guesses about the canaries were right.",
    "target FPR": "The false-positive rate the red-team attack's threshold was calibrated to.",
    "threshold": "The score above which a record is called a member, calibrated on shadow models.",
    "shadow TPR": "The share of the shadow models' members the threshold catches (95% CI): the attack's expected "
    "power if the shadow data resemble the training data.",
    "shadow FPR": "The share of the shadow models' non-members the threshold wrongly calls members (95% CI).",
    "shadow models": "Models the attacker trained on look-alike data to calibrate the attack.",
    "member": "Records the attack calls members at the target FPR.",
    "not-member": "Records scoring so low that members of models like the target score that low at most at the "
    "chosen false-negative rate (by default the target FPR), with the shadows fitting the target and the attack's "
    "power shown: evidence of non-membership, not merely a score below the member threshold.",
    "inconclusive": "Records the attack could not decide: every score between the not-member and member thresholds "
    "(not flagged at this FPR, which is not evidence of non-membership), and every score when the attack's power on "
    "the target is unknown.",
    "repetitions in training": "How many times the canary appeared in the fine-tuning data.",
    "mean exposure": "Canary exposure (Carlini et al. 2019): log2 of the number of random candidates minus "
    "log2 of the canary's rank; higher = more memorized. 95% CI over the canaries.",
    "defense": "The training-time defense or output post-processor evaluated.",
    "test accuracy": "The defended model's accuracy on records it did not train on.",
    "strongest attack": "The attack with the highest TPR at the headline FPR on this defense (AUC breaks ties).",
    "class": "The class (label) the records belong to.",
    "group": "The group (the user's group column) the records belong to.",
    "members": "Training records in this slice.",
    "non-members": "Records of this slice the model did not train on.",
    "record": "The record's id (the user's id column, else its row number).",
    "label": "The record's class.",
    "text": "The record's text on one line, cut at 120 characters (the whole text is row `record` of the "
    "members file, then the non-members file, as scores.csv numbers them).",
    "score": "The strongest attack's score for the record (higher = more likely a member).",
    "non-member exceedance": "The share of non-members scoring at least as high as this record: the FPR an "
    "attacker would accept to call it a member. Near 0 = the record stands out.",
    "what the attacker is assumed to have": "The knowledge and access the attack assumes (threat model).",
}

_TH = re.compile(r"<th>([^<]*)")


def column_help(header: str) -> str | None:
    """The explanation of the column headed ``header`` (HTML text), or None."""
    text = html.unescape(header).strip()
    matches = [k for k in COLUMN_HELP if text == k or text.startswith(k + " ")]
    return COLUMN_HELP[max(matches, key=len)] if matches else None


def add_column_help(page: str) -> str:
    """``page`` with a ``title`` tooltip on every ``<th>`` whose header :func:`column_help` explains."""

    def one(match: re.Match) -> str:
        explained = column_help(match.group(1))
        if explained is None:
            return match.group(0)
        return f'<th title="{html.escape(explained, quote=True)}">{match.group(1)}'

    return _TH.sub(one, page)


_CODE = re.compile(r"`([^`]+)`")


def code_spans(text: str):
    """``text`` HTML-escaped, with Markdown code spans (`` `memberscope gate` ``) as ``<code>`` elements (a
    ``markupsafe.Markup``, so Jinja does not escape it again): the recommendations are written once, for the
    Markdown summary and the HTML report."""
    from markupsafe import Markup

    return Markup(_CODE.sub(r"<code>\1</code>", html.escape(str(text), quote=False)))
