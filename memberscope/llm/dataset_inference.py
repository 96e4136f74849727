"""Dataset inference: was this *set* of texts in the model's training data? (Maini et al., NeurIPS 2024,
"LLM Dataset Inference: Did you train on my dataset?")

Single-text membership attacks on language models are often near chance; a whole set of texts gives many
weak signals that add up. The suspect set (the texts one asks about) is compared with a validation set: texts
from the same distribution that the model certainly never saw (written after its cutoff, or held back).

1. Features: every text gets the scores of several token-level attacks (:data:`DEFAULT_FEATURES`: loss,
   zlib, lowercase, Min-K% and Min-K%++ at several k), from one pass through the model (plus the lowercase
   pass).
2. Aggregation: suspect and validation texts are each split at random into halves A and B. A linear
   regressor (standardised features, ridge regression of the label 1 = suspect, 0 = validation, each set
   weighted equally; the paper's linear model, in closed form) learns on half A to tell them apart.
3. Test: the learned score of the half-B texts, which the model was not fitted on, is compared with a
   one-sided Welch t-test (H1: suspect scores are higher). Under the null (the model never saw the
   suspect set, and both sets come from one distribution) the half-B scores of both sets are i.i.d., so
   the p-value is valid whatever the aggregation learned on half A.

A small p-value says the model treats the suspect texts as it treats what it trained on. A large one is
**inconclusive**, never evidence that the set was not used: the test's power grows with the number of texts
and with how much the model memorised (see :data:`RECOMMENDED_SUSPECT_TEXTS`). If the two sets differ
in any way besides training (source, date, length), the test detects that difference; the bag-of-words
validity guard (:mod:`~memberscope.llm.validity`) warns when the sets are separable without the model.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memberscope import __version__
from memberscope.exceptions import InvalidInputError
from memberscope.llm import attacks as llm_attacks

__all__ = [
    "DEFAULT_FEATURES",
    "MIN_TEXTS",
    "RECOMMENDED_SUSPECT_TEXTS",
    "WEAK_LEAK_SUSPECT_TEXTS",
    "DatasetInferenceResult",
    "aggregate_and_test",
    "dataset_inference",
    "parse_feature",
    "text_features",
]

SCHEMA_VERSION = "1.0"
#: Min-K% and Min-K%++ fractions used as features (Maini et al. use k from 5% to 60%).
FEATURE_KS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
DEFAULT_FEATURES: tuple[str, ...] = (
    "loss",
    "zlib",
    "lowercase",
    *(f"min-k@{k}" for k in FEATURE_KS),
    *(f"min-k++@{k}" for k in FEATURE_KS),
)
#: Fewer texts per set than this are refused: each half needs texts of both sets to fit and to test.
MIN_TEXTS = 10
#: Suspect texts (with as many validation texts) that gave p < 0.01 in at least 90% of seeded draws on the
#: fine-tuned demo model (benchmarks/llm_dataset_inference.py; BENCHMARKS.md). Below it a result carries a
#: warning. It is a floor, not a guarantee: a model that memorised less needs more texts (Maini et al. used
#: about 1,000 on Pythia).
RECOMMENDED_SUSPECT_TEXTS = 20
#: The same measurement on the demo model fine-tuned 2 epochs instead of 20 (single-text loss AUC 0.62, a weak
#: leak): the number of suspect texts that gave p < 0.01 in at least 90% of draws.
WEAK_LEAK_SUSPECT_TEXTS = 300
TEST_NAME = "welch-t (one-sided: suspect > validation, on the held-out half)"


def parse_feature(spec: str) -> llm_attacks.TokenAttack:
    """``"loss"`` → the loss attack; ``"min-k@0.1"`` → Min-K% with ``k = 0.1``; any registered attack name."""
    name, sep, k = spec.strip().partition("@")
    if not sep:
        return llm_attacks.create(name)
    try:
        value = float(k)
    except ValueError:
        raise InvalidInputError(f"feature {spec!r}: expected NAME@K with K a fraction, e.g. min-k@0.1") from None
    return llm_attacks.create(name, k=value)


def text_features(
    lm,
    texts: list[str],
    *,
    features: tuple[str, ...] | list[str] = DEFAULT_FEATURES,
    max_length: int = 128,
    bars=None,
) -> tuple[np.ndarray, list[str], Any]:
    """Attack scores of every text, as features (``bars``: a ``rich.progress.Progress`` showing each scoring pass).

    Returns
    -------
    X : ndarray of shape (n_texts, n_features) — column ``j`` is feature ``features[j]`` (higher = member).
    names : the feature names, shape (n_features,).
    signals : the :class:`~memberscope.llm.attacks.LLMSignals` they came from (truncation is recorded there).
    """
    names = list(dict.fromkeys(features))
    if not names:
        raise InvalidInputError("no features given; expected attack names such as loss, zlib, min-k@0.2")
    attacks = [parse_feature(f) for f in names]
    bad = [n for n, a in zip(names, attacks, strict=True) if "reference" in a.needs]
    if bad:
        raise InvalidInputError(f"features {bad} need a reference model, which dataset inference does not use")
    signals, _ = llm_attacks.compute_signals(lm, texts, attacks, max_length=max_length, bars=bars)
    X = np.column_stack([np.asarray(a.score(signals), dtype=np.float64) for a in attacks])
    return X, names, signals


def _servable(lm, features) -> tuple[list[str], list[str]]:
    """The features to compute, and warnings for default ones ``lm`` cannot serve (an endpoint has no Min-K%++).

    Raises InvalidInputError for an asked-for feature that ``lm`` cannot serve, naming why.
    """
    unavailable = dict(getattr(lm, "unavailable_attacks", {}))
    if features:
        for spec in features:
            name = spec.strip().partition("@")[0]
            if name in unavailable:
                raise InvalidInputError(f"feature {spec!r} cannot be computed on {lm.path}: {unavailable[name]}")
        return list(features), []
    kept = [f for f in DEFAULT_FEATURES if f.partition("@")[0] not in unavailable]
    dropped = sorted({f.partition("@")[0] for f in DEFAULT_FEATURES} & set(unavailable))
    return kept, [f"{unavailable[name]} (its features were left out of the default set)" for name in dropped]


def _halves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def aggregate_and_test(
    suspect: np.ndarray, validation: np.ndarray, *, seed: int = 0, alpha: float = 0.05, ridge: float = 1.0
) -> dict[str, Any]:
    """Fit the aggregation on half A of each set, test half B with a one-sided Welch t-test.

    Parameters
    ----------
    suspect : ndarray of shape (n_suspect, n_features) — features of the suspect texts.
    validation : ndarray of shape (n_validation, n_features) — features of texts the model never saw.
    seed : draws the halves (``numpy.random.default_rng(seed)``: suspect first, then validation).
    alpha : the test's level; ``significant`` is ``p_value < alpha``.
    ridge : L2 penalty of the ridge regression on standardised features (sklearn's ``Ridge(alpha=ridge)``).

    Returns
    -------
    dict with ``p_value``, ``statistic``, ``df``, ``significant``, ``test``, ``weights`` (per feature, on the
    standardised scale), ``intercept``, ``split`` (row indices of each set in each half), ``scores``
    (aggregated score of every suspect and validation text, shapes (n_suspect,) and (n_validation,); the
    half-A scores are in-sample), ``auc_held_out`` (AUC of the half-B scores, an effect size) and the means.

    Raises
    ------
    InvalidInputError
        Fewer than :data:`MIN_TEXTS` texts in a set, mismatched feature counts, non-finite features.
    """
    from scipy.stats import ttest_ind
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from memberscope.metrics import roc_auc

    suspect = np.asarray(suspect, dtype=np.float64)
    validation = np.asarray(validation, dtype=np.float64)
    if suspect.ndim != 2 or validation.ndim != 2 or suspect.shape[1] != validation.shape[1]:
        raise InvalidInputError(
            f"expected two feature matrices with the same columns; got shapes {suspect.shape} and {validation.shape}"
        )
    for what, X in (("suspect", suspect), ("validation", validation)):
        if len(X) < MIN_TEXTS:
            raise InvalidInputError(
                f"{len(X)} {what} texts; dataset inference needs at least {MIN_TEXTS} per set (half to fit the "
                f"aggregation, half to test) and about {RECOMMENDED_SUSPECT_TEXTS} for power on the demo model"
            )
        if not np.all(np.isfinite(X)):
            raise InvalidInputError(f"the {what} features hold NaN or infinite values")
    if not 0.0 < alpha < 1.0:
        raise InvalidInputError(f"alpha must be in (0, 1); got {alpha}")
    rng = np.random.default_rng(seed)
    s_fit, s_test = _halves(len(suspect), rng)
    v_fit, v_test = _halves(len(validation), rng)
    X_fit = np.vstack([suspect[s_fit], validation[v_fit]])
    y_fit = np.r_[np.ones(len(s_fit)), np.zeros(len(v_fit))]
    weights = np.r_[np.full(len(s_fit), 0.5 / len(s_fit)), np.full(len(v_fit), 0.5 / len(v_fit))] * len(y_fit)
    model = make_pipeline(StandardScaler(), Ridge(alpha=ridge))
    model.fit(X_fit, y_fit, ridge__sample_weight=weights)
    s_scores, v_scores = model.predict(suspect), model.predict(validation)
    a, b = s_scores[s_test], v_scores[v_test]
    if np.ptp(np.r_[a, b]) == 0:  # a constant score carries no evidence either way
        statistic, p_value, df = 0.0, 1.0, float(len(a) + len(b) - 2)
    else:
        test = ttest_ind(a, b, equal_var=False, alternative="greater")
        statistic, p_value, df = float(test.statistic), float(test.pvalue), float(test.df)
    linear = model[-1]
    return {
        "p_value": p_value,
        "statistic": statistic,
        "df": df,
        "alpha": alpha,
        "significant": bool(p_value < alpha),
        "test": TEST_NAME,
        "aggregator": f"standardised features, ridge regression (alpha={ridge}) of 1 = suspect, 0 = validation, "
        "both sets weighted equally",
        "weights": np.ravel(linear.coef_).tolist(),
        "intercept": float(np.ravel(linear.intercept_)[0]),
        "split": {
            "fit_suspect": s_fit.tolist(),
            "fit_validation": v_fit.tolist(),
            "test_suspect": s_test.tolist(),
            "test_validation": v_test.tolist(),
        },
        "scores": {"suspect": s_scores, "validation": v_scores},
        "auc_held_out": float(roc_auc(np.r_[np.ones(len(a), bool), np.zeros(len(b), bool)], np.r_[a, b])),
        "mean_suspect": float(a.mean()),
        "mean_validation": float(b.mean()),
    }


@dataclass
class DatasetInferenceResult:
    """``results`` (what results.json holds), the per-text ``features`` and the aggregated ``scores``.

    Attributes
    ----------
    results : dict, written as ``results.json`` (``"kind": "dataset-inference"``).
    features : ndarray of shape (n_suspect + n_validation, n_features) — suspect rows first.
    feature_names : list of str, shape (n_features,).
    is_suspect : ndarray of shape (n_suspect + n_validation,), bool.
    half : ndarray of shape (n_suspect + n_validation,) of ``"fit"``/``"test"``.
    scores : ndarray of shape (n_suspect + n_validation,) — the aggregated score (in-sample on the fit half).
    """

    results: dict[str, Any]
    features: np.ndarray
    feature_names: list[str]
    is_suspect: np.ndarray
    half: np.ndarray
    scores: np.ndarray

    def write(self, out_dir: str | os.PathLike) -> dict[str, str]:
        """Write ``results.json`` and ``features.csv`` (one row per text) into ``out_dir``; returns the paths."""
        import pandas as pd

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        n_suspect = int(self.is_suspect.sum())
        rows = np.arange(len(self.is_suspect))
        frame = pd.DataFrame(
            {
                "set": np.where(self.is_suspect, "suspect", "validation"),
                "row": np.where(self.is_suspect, rows, rows - n_suspect) + 1,
                "half": self.half,
                "score": self.scores,
            }
        )
        for j, name in enumerate(self.feature_names):
            frame[name] = self.features[:, j]
        paths = {"results": str(out / "results.json"), "features": str(out / "features.csv")}
        Path(paths["results"]).write_text(json.dumps(self.results, indent=2))
        frame.to_csv(paths["features"], index=False)
        return paths


def _verdict(test: dict[str, Any], n_suspect: int, shifted: bool) -> str:
    p, alpha = test["p_value"], test["alpha"]
    if test["significant"]:
        text = (
            f"the model treats the suspect texts like training data: p = {p:.3g} < {alpha} "
            "(evidence that the suspect set was in the training data)"
        )
        if shifted:
            text += "; but the validity guard separates the two sets without the model, so this may be a shift"
        return text
    return (
        f"inconclusive: p = {p:.3g} >= {alpha}, no evidence at this level that the suspect set was used; this does "
        f"NOT show that it was not used (with {n_suspect} suspect texts: a strongly memorising demo model was caught "
        f"reliably with {RECOMMENDED_SUSPECT_TEXTS}, a weakly memorising one (single-text AUC 0.62) needed "
        f"{WEAK_LEAK_SUSPECT_TEXTS})"
    )


def dataset_inference(
    *,
    model,
    suspect: list[str],
    validation: list[str],
    features: tuple[str, ...] | list[str] | None = None,
    alpha: float = 0.05,
    seed: int = 0,
    max_length: int = 128,
    tokenizer=None,
    validity: bool = True,
    n_bootstrap: int = 1000,
    bars=None,
) -> DatasetInferenceResult:
    """Test whether the ``suspect`` texts were in ``model``'s training data, against ``validation`` texts it never saw.

    Parameters
    ----------
    model : a local ``save_pretrained`` directory (causal or masked LM), a loaded
        :class:`~memberscope.llm.loading.LanguageModel`, or an
        :class:`~memberscope.llm.endpoint.EndpointLanguageModel` (an LLM API: features it cannot serve, Min-K%++,
        are left out of the default set with a warning, and refused when asked for).
    suspect : the texts asked about, shape (n_suspect,).
    validation : texts from the same distribution that the model did not train on, shape (n_validation,).
    features : attack names (``NAME@K`` sets Min-K%'s k); default :data:`DEFAULT_FEATURES` (those the model
        can serve).
    alpha : the level of the test.
    seed : draws the halves; same seed, same p-value.
    max_length : tokens per text (the model's limit applies when lower).
    tokenizer : tokenizer folder, when not saved beside the model.
    validity : run the bag-of-words guard on suspect vs validation (warns if separable without the model).
    n_bootstrap : bootstrap replicates of the validity guard's AUC CI.
    bars : a ``rich.progress.Progress`` showing each scoring pass (texts scored of the total); None: nothing shown.

    Returns
    -------
    :class:`DatasetInferenceResult`; ``results["p_value"]`` is the one-sided p-value.

    Raises
    ------
    InvalidInputError
        Fewer than :data:`MIN_TEXTS` texts in a set; an unknown feature; a feature an endpoint cannot serve;
        anything the model loader refuses.
    """
    from memberscope.llm.audit import _as_lm, model_block, truncation_warning

    started = time.perf_counter()
    for what, texts in (("suspect", suspect), ("validation", validation)):
        if len(texts) < MIN_TEXTS:
            raise InvalidInputError(
                f"{len(texts)} {what} texts; dataset inference needs at least {MIN_TEXTS} per set, and about "
                f"{RECOMMENDED_SUSPECT_TEXTS} suspect texts for power on the demo model"
            )
    lm = _as_lm(model, "model", tokenizer)
    features, left_out = _servable(lm, features)
    texts = list(suspect) + list(validation)
    n_s = len(suspect)
    X, names, signals = text_features(lm, texts, features=features, max_length=max_length, bars=bars)
    scoring_seconds = time.perf_counter() - started
    test = aggregate_and_test(X[:n_s], X[n_s:], seed=seed, alpha=alpha)

    run_warnings = [f"while loading {lm.path}: {m}" for m in lm.load_warnings] + left_out
    if (cut := truncation_warning(signals.target, max_length)) is not None:
        run_warnings.append(cut + " (records count suspect texts first, then validation texts, from 0)")
    if n_s < RECOMMENDED_SUSPECT_TEXTS:
        run_warnings.append(
            f"only {n_s} suspect texts: {RECOMMENDED_SUSPECT_TEXTS} are needed to catch even the demo model's strongly "
            "memorised set reliably (p < 0.01 in at least 90% of draws), and a weakly memorising one needed "
            f"{WEAK_LEAK_SUSPECT_TEXTS}; a non-significant p-value here is inconclusive"
        )
    validity_block = None
    if validity:
        from memberscope.llm.validity import bag_of_words_baseline

        is_suspect = np.r_[np.ones(n_s, bool), np.zeros(len(validation), bool)]
        validity_block = bag_of_words_baseline(texts, is_suspect, seed=seed, n_bootstrap=n_bootstrap, confidence=0.95)
        validity_block.pop("scores")
        if validity_block["warning"]:
            run_warnings.append(
                validity_block["warning"].replace("members from non-members", "suspect from validation texts")
                + "; dataset inference then tests that difference, not training"
            )
    shifted = bool(validity_block and validity_block["warning"])

    split = test["split"]
    half = np.empty(len(texts), dtype=object)
    half[np.r_[split["fit_suspect"], n_s + np.asarray(split["fit_validation"], dtype=int)].astype(int)] = "fit"
    half[np.r_[split["test_suspect"], n_s + np.asarray(split["test_validation"], dtype=int)].astype(int)] = "test"
    scores = np.r_[test["scores"]["suspect"], test["scores"]["validation"]]
    results = {
        "schema_version": SCHEMA_VERSION,
        "memberscope_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "kind": "dataset-inference",
        "method": "Maini et al. 2024, LLM Dataset Inference: attack features, learned linear aggregation, t-test",
        "model": {**model_block(lm), **({"endpoint": lm.describe()} if hasattr(lm, "describe") else {})},
        "p_value": test["p_value"],
        "statistic": test["statistic"],
        "test": {k: test[k] for k in ("test", "statistic", "df", "p_value", "alpha", "significant")},
        "verdict": _verdict(test, n_s, shifted),
        "counts": {
            "n_suspect": n_s,
            "n_validation": len(validation),
            "fit": {"suspect": len(split["fit_suspect"]), "validation": len(split["fit_validation"])},
            "test": {"suspect": len(split["test_suspect"]), "validation": len(split["test_validation"])},
            "recommended_suspect": RECOMMENDED_SUSPECT_TEXTS,
            "needed_for_a_weak_leak": WEAK_LEAK_SUSPECT_TEXTS,
            "minimum_per_set": MIN_TEXTS,
            "n_truncated": int(signals.target.truncated.sum()),
        },
        "features": names,
        "aggregator": {
            "model": test["aggregator"],
            "weights": dict(zip(names, test["weights"], strict=True)),
            "intercept": test["intercept"],
        },
        "effect": {
            "auc_held_out": test["auc_held_out"],
            "mean_score_suspect": test["mean_suspect"],
            "mean_score_validation": test["mean_validation"],
        },
        "split": {**split, "rows": "0-based positions in the suspect and validation files"},
        "seed": seed,
        "config": {
            "alpha": alpha,
            "seed": seed,
            "max_length": None if signals.target.max_length is None else int(signals.target.max_length),
            "max_length_requested": max_length,
            "features": names,
        },
        "validity": validity_block,
        "timings": {
            "scoring_seconds": round(scoring_seconds, 3),
            "total_seconds": round(time.perf_counter() - started, 3),
        },
        "warnings": run_warnings,
    }
    return DatasetInferenceResult(
        results=results,
        features=X,
        feature_names=names,
        is_suspect=np.r_[np.ones(n_s, bool), np.zeros(len(validation), bool)],
        half=half.astype(str),
        scores=scores,
    )
