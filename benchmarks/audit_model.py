"""Auditing a user's own model: a scikit-learn Pipeline on real clinical tables, and matched vs mismatched
reference models.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/audit_model.py --out runs/bench-audit-model

1. For each clinical table of Debian's r-cran-mlbench (``breast-cancer-original``, ``pima-diabetes``): a Pipeline
   (most-frequent / median imputation, one-hot encoding of the text columns, histogram gradient boosting) fitted on
   a seeded half, saved with joblib, the halves written as Parquet, and ``memberscope audit-model`` run on them with
   its defaults (16 reference models cloned from the pipeline, every attack). Prints AUC and TPR at 1% and 0.1%
   FPR with CIs of the strongest attack, the fidelity figures, the duplicates found and the wall time.
2. Matched vs mismatched reference models: a random forest (100 trees) on 600 digits records and one on 250
   breast-cancer records (scikit-learn's), audited with the default (clones of the forest) and with the MLP recipe
   standing in (the old default); the strongest attack's TPR at 1% FPR and the fidelity verdict of each.

Writes OUT/summary.md (the tables for BENCHMARKS.md) and OUT/<case>/ for each audit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ATTACKS = "all"


def _cpu() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _pct(value: float, ci) -> str:
    return f"{100 * value:.1f}% ({100 * ci[0]:.1f}–{100 * ci[1]:.1f})"


def clinical(name: str, label: str, drop: list[str], out: Path, seed: int) -> dict:
    import joblib
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from memberscope.datasets import load_frame

    frame = load_frame(name).drop(columns=drop)
    members = frame.sample(frac=0.5, random_state=seed)
    nonmembers = frame.drop(members.index)
    features = [c for c in frame.columns if c != label]
    from pandas.api.types import is_numeric_dtype

    text = [c for c in features if not is_numeric_dtype(frame[c])]
    numbers = [c for c in features if c not in text]
    steps = []
    if text:
        encode = make_pipeline(
            SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        )
        steps.append((encode, text))
    if numbers:
        steps.append((SimpleImputer(strategy="median"), numbers))
    model = make_pipeline(make_column_transformer(*steps), HistGradientBoostingClassifier(random_state=seed))
    model.fit(members[features], members[label])
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / "model.joblib")
    members.to_parquet(folder / "members.parquet")
    nonmembers.to_parquet(folder / "nonmembers.parquet")
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable, "-m", "memberscope.cli", "audit-model", "--model", str(folder / "model.joblib"),
            "--members", str(folder / "members.parquet"), "--nonmembers", str(folder / "nonmembers.parquet"),
            "--label-column", label, "--seed", str(seed), "--out", str(folder / "run"), "--no-progress",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    wall = time.perf_counter() - start
    results = json.loads((folder / "run" / "results.json").read_text())
    best = results["headline"]["strongest_attack"]
    entry = results["attacks"][best]
    fid = results["fidelity"]
    return {
        "name": name,
        "n": len(frame),
        "best": best,
        "auc": f"{entry['auc']:.3f} ({entry['auc_ci'][0]:.3f}–{entry['auc_ci'][1]:.3f})",
        "tpr1": _pct(entry["tpr_at_fpr"]["0.01"], entry["tpr_at_fpr_ci"]["0.01"]),
        "tpr01": _pct(entry["tpr_at_fpr"]["0.001"], entry["tpr_at_fpr_ci"]["0.001"])
        + ("" if entry["fpr_resolvable"]["0.001"] else " †"),
        "fidelity": fid,
        "duplicates": results["inputs"]["duplicates_of_members"].get("nonmembers", 0),
        "nonmembers": results["inputs"]["records"]["nonmembers"] + results["inputs"]["records"]["population"],
        "wall": wall,
        "target": results["target"],
    }


def matched_vs_mismatched(case: str, seed: int) -> list[dict]:
    from sklearn.ensemble import RandomForestClassifier

    from memberscope.api import audit_model
    from memberscope.exceptions import LowFidelityWarning

    if case == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        n = 600
    else:
        from sklearn.datasets import load_breast_cancer

        X, y = load_breast_cancer(return_X_y=True)
        n = 250
    order = np.random.default_rng(seed).permutation(len(y))
    mem, non = order[:n], order[n : 2 * n]
    forest = RandomForestClassifier(n_estimators=100, random_state=seed).fit(X[mem], y[mem])
    rows = []
    for label, recipe in (("clones of the forest (default)", None), ("MLP recipe (the old default)", "mlp")):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LowFidelityWarning)
            result = audit_model(
                forest, members=(X[mem], y[mem]), nonmembers=(X[non], y[non]), recipe=recipe, reference_models=16,
                seed=seed, progress=False,
            )  # fmt: skip
        best = result.results.strongest_attack()
        m = result.results.attacks[best].metrics
        fid = result.results.sections["fidelity"]
        rows.append(
            {
                "case": case,
                "references": label,
                "best": best,
                "tpr1": _pct(m.tpr_at_fpr["0.01"], m.tpr_at_fpr_ci["0.01"]),
                "lira": f"{result.results.attacks['lira-online'].auc:.3f}",
                "refs_train": fid["references"]["train_accuracy"],
                "target_train": fid["target"]["train_accuracy"],
                "ks": fid["confidence_ks"]["statistic"],
                "passed": fid["passed"],
                "wall": time.perf_counter() - start,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-audit-model"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    tables = [
        clinical("breast-cancer-original", "Class", ["Id"], args.out, args.seed),
        clinical("pima-diabetes", "diabetes", [], args.out, args.seed),
    ]
    rows = matched_vs_mismatched("digits", args.seed) + matched_vs_mismatched("breast-cancer", args.seed)
    lines = [
        f"CPU: {_cpu()}; load average at start {load[0]:.1f}, at end {os.getloadavg()[0]:.1f}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        "",
        "| table | records | strongest attack | AUC (95% CI) | TPR @ 1% FPR | TPR @ 0.1% FPR | fidelity "
        "(target vs references: train acc, held-out acc, KS) | non-members copying members | wall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in tables:
        f = t["fidelity"]
        fidelity = (
            f"{'passed' if f['passed'] else 'FAILED'}: {f['target']['train_accuracy']:.3f} vs "
            f"{f['references']['train_accuracy']:.3f}, {f['target']['test_accuracy']:.3f} vs "
            f"{f['references']['test_accuracy']:.3f}, KS {f['confidence_ks']['statistic']:.3f}"
        )
        lines.append(
            f"| {t['name']} | {t['n']} | {t['best']} | {t['auc']} | {t['tpr1']} | {t['tpr01']} | {fidelity} | "
            f"{t['duplicates']} of {t['nonmembers']} | {t['wall']:.0f} s |"
        )
    lines += [
        "",
        "| target | reference models | strongest attack | TPR @ 1% FPR (95% CI) | LiRA-online AUC | train acc "
        "(target / references) | KS | fidelity | wall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| random forest, {r['case']} | {r['references']} | {r['best']} | {r['tpr1']} | {r['lira']} | "
            f"{r['target_train']:.3f} / {r['refs_train']:.3f} | {r['ks']:.3f} | "
            f"{'passed' if r['passed'] else 'FAILED'} | {r['wall']:.0f} s |"
        )
    text = "\n".join(lines) + "\n"
    (args.out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
