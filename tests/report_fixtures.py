"""Synthetic run folders that follow the results.json / defenses.json contracts (no model training)."""

import json

import numpy as np
import pandas as pd

from memberscope.metrics import evaluate


def metrics(shift: float, *, seed: int = 0, n: int = 1000) -> dict:
    """Real metrics of Gaussian scores separated by ``shift`` (members above non-members)."""
    rng = np.random.default_rng(seed)
    member = np.r_[np.ones(n), np.zeros(n)].astype(bool)
    return evaluate(member, rng.normal(size=2 * n) + shift * member, fprs=(0.1, 0.01), n_bootstrap=100).to_dict()


def write_audit_run(path, *, claimed_epsilon=None, one_run=True, defenses=None):
    """An audit-core run folder: results.json, scores.csv and optionally defenses.json."""
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n = 1000
    member = np.r_[np.ones(n), np.zeros(n)].astype(bool)
    scores = {"loss": rng.normal(size=2 * n) + 0.5 * member, "rmia-online": rng.normal(size=2 * n) + 2.0 * member}
    attacks = {name: evaluate(member, s, fprs=(0.1, 0.01), n_bootstrap=100).to_dict() for name, s in scores.items()}
    recipe = {"name": "mlp", "epochs": 5}
    if claimed_epsilon is not None:
        recipe.update(epsilon=claimed_epsilon, delta=1e-5)
    from memberscope.privacy.empirical import epsilon_lower_bound, one_run_audit

    section = {
        "alpha": 0.05,
        "delta": 1e-5 if claimed_epsilon is not None else 0.0,
        "claimed": None if claimed_epsilon is None else {"epsilon": claimed_epsilon, "delta": 1e-5},
        "clopper_pearson": {a: epsilon_lower_bound(member, s).to_dict() for a, s in scores.items()},
        "one_run": None,
    }
    if one_run:
        canaries = np.arange(0, 2 * n, 2)
        section["one_run"] = {
            "canaries": canaries.size,
            "canaries_included": int(member[canaries].sum()),
            "beta": 0.05,
            "delta": section["delta"],
            "records": canaries.tolist(),
            "attacks": {
                a: one_run_audit(member[canaries], s[canaries], delta=section["delta"]).to_dict()
                for a, s in scores.items()
            },
        }
    results = {
        "schema_version": "1.0",
        "created": "2026-11-24T10:00:00+0000",
        "config": {"model": "mlp", "seed": 0},
        "dataset": {"name": "synthetic"},
        "game": {
            "pool_size": 2 * n,
            "population_size": 0,
            "n_members": n,
            "n_nonmembers": n,
            "n_reference_models": 4,
            "reference_design": "paired",
        },
        "target": {"recipe": recipe, "train_accuracy": 0.99, "test_accuracy": 0.9},
        "attacks": attacks,
        "epsilon": section,
        "warnings": [],
    }
    (path / "results.json").write_text(json.dumps(results))
    frame = pd.DataFrame({"record": np.arange(2 * n), "member": member.astype(int), **scores})
    frame.to_csv(path / "scores.csv", index=False)
    if defenses is not None:
        (path / "defenses.json").write_text(json.dumps(defenses))
    return path


def defenses_payload(*, dp_epsilon=1.0, dp_shift=0.1):
    """defenses.json per the contract: an undefended model, a regularized one and a DP-SGD one."""
    return {
        "defenses": {
            "none": {
                "test_accuracy": 0.91,
                "epsilon": None,
                "delta": None,
                "train_seconds": 3.2,
                "attacks": {"loss": metrics(0.8), "rmia-online": metrics(2.5, seed=1)},
            },
            "weight-decay": {
                "test_accuracy": 0.9,
                "epsilon": None,
                "delta": None,
                "train_seconds": 3.3,
                "attacks": {"loss": metrics(0.4), "rmia-online": metrics(1.0, seed=1)},
            },
            "dp-sgd": {
                "test_accuracy": 0.82,
                "epsilon": dp_epsilon,
                "delta": 1e-5,
                "train_seconds": 9.1,
                "attacks": {"loss": metrics(0.0), "rmia-online": metrics(dp_shift, seed=1)},
            },
        },
        "recommendation": {
            "budget": {"tpr_at_fpr": {"0.01": 0.05}},
            "defense": "dp-sgd",
            "reason": "the only defense within the budget; costs 9 points of accuracy",
        },
    }


REDTEAM = {
    "kind": "redteam",
    "created": "2026-11-24T10:00:00+0000",
    "redteam": {
        "target": {"url": "http://127.0.0.1:8000/predict", "queries_spent": 1234, "query_budget": 5000},
        "exposure": {
            "mode": "top-k",
            "top_k": 3,
            "decimals": 2,
            "deterministic": True,
            "rate_limited": False,
            "attacks_possible": ["confidence", "label-only"],
        },
        "attack": "confidence",
        "calibration": {
            "fpr_target": 0.01,
            "threshold": 0.93,
            "shadow_tpr": 0.12,
            "shadow_tpr_ci": [0.09, 0.15],
            "shadow_fpr": 0.011,
            "shadow_fpr_ci": [0.006, 0.018],
            "n_shadow_models": 8,
        },
        "verdicts": {"member": 17, "not-member": 60, "inconclusive": 23},
        "recommendations": ["Return labels only: top-3 probabilities let the confidence attack work."],
    },
}


def llm_payload():
    return {
        "kind": "llm",
        "created": "2026-11-24T10:00:00+0000",
        "attacks": {"loss": metrics(0.3), "min-k": metrics(0.6, seed=2)},
        "llm": {
            "model": "/models/tiny-gpt",
            "reference_model": None,
            "n_members": 1000,
            "n_nonmembers": 1000,
            "canaries": {
                "10": {"exposure_mean": 6.5, "exposure_ci": [5.9, 7.1], "tpr_at_fpr": {"0.01": 0.4}},
                "1": {"exposure_mean": 1.2, "exposure_ci": [0.9, 1.5], "tpr_at_fpr": {"0.01": 0.02}},
            },
            "validity": {
                "baseline_auc": 0.71,
                "baseline_auc_ci": [0.68, 0.74],
                "warning": "a model-free baseline separates members (AUC 0.71): the split is not random",
            },
        },
    }
