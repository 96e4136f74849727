"""Screenshots of an audit report and a red-team report for the README (docs/screenshots/*.png).

Both come from real runs on scikit-learn's digits (no download): an audit of an overfit MLP with 4 reference
models, and a red-team attack on an overfit random forest behind memberscope's target wrapper, with the
ground truth of who was a member so the report has an attack table. Needs a Chromium on PATH.

    PYTHONPATH=. python scripts/report_screenshots.py [--out docs/screenshots] [--width 1280] [--height 1400]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def audit_run(folder: Path) -> Path:
    from memberscope.api import run_audit
    from memberscope.config import AuditConfig

    config = AuditConfig(
        dataset="digits",
        model="mlp",
        model_params={"hidden": [256, 256], "epochs": 60},
        reference_models=4,
        n_bootstrap=200,
        seed=0,
        use_cache=False,
        out=str(folder),
    )
    run_audit(config, progress=False).write(folder)
    return folder


def redteam_run(folder: Path) -> Path:
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    from memberscope.redteam.pipeline import run_redteam
    from memberscope.targets import wrap

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    train, test, shadow = order[:500], order[500:1000], order[1000:]
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X[train], y[train])
    asked = np.concatenate([train[:300], test[:300]])
    member = np.r_[np.ones(300, dtype=bool), np.zeros(300, dtype=bool)]
    result = run_redteam(
        wrap(model, n_classes=10),
        X[asked],
        y[asked],
        X[shadow],
        y[shadow],
        member=member,
        record_ids=[f"digit-{i}" for i in asked],
        recipe="sklearn",
        seed=0,
    )
    result.write(folder)
    return folder


def main(argv: list[str] | None = None) -> None:
    from memberscope.report.browser import screenshot
    from memberscope.report.html import write_html

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1400)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="memberscope-shots-") as tmp:
        for name, make in (("audit-report", audit_run), ("redteam-report", redteam_run)):
            report = write_html(make(Path(tmp) / name))
            path = screenshot(report, args.out / f"{name}.png", width=args.width, height=args.height)
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
