"""memberscope's shadow-model and label-only attacks vs IBM ART's MembershipInferenceBlackBox, same target.

Setting (purchase-synthetic, seed 0): a torch MLP (one hidden layer of 64 units, 40 epochs) trained on
2,500 records is the target, seen through three APIs: full probabilities, top-1 probability, label only.
Every attack is scored on the same 1,250 members and 5,000 non-members (enough to resolve 0.1% FPR:
5 false positives allowed). The attacker owns 5,000 disjoint "public" records for shadow models.

- memberscope shadow: 4 shadows (same recipe as the target) seen through the API's post-processing,
  logistic-regression attack on sorted probabilities; 1 query per record.
- memberscope label-only: 16 bit-flip perturbations per record, flip probability chosen on the shadows;
  17 queries per record.
- ART BB (shadow): ``MembershipInferenceBlackBox`` (attack model "nn", ART's default) fit on the same 4
  shadows' *full* probability vectors (what ART's ``ShadowModels`` returns), applied to the API's answers.
- ART BB (supervised): the same attack fit on 1,250 known target members and 1,250 known non-members (ART's
  documented use; a stronger attacker, who needs ground truth about the target); their queries count too.

Needs ``pip install -c constraints.txt adversarial-robustness-toolbox`` (not part of setup.sh).
Run: ``.venv/bin/python benchmarks/redteam_vs_art.py [--out benchmarks/results/redteam_vs_art.json]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from memberscope.datasets.purchase_synthetic import generate_purchase
from memberscope.metrics import evaluate
from memberscope.recipes import TorchRecipe
from memberscope.redteam import LabelOnlyAttack
from memberscope.redteam.shadow import ShadowModelAttack
from memberscope.targets import wrap
from memberscope.targets.outputs import fill_withheld

N_TRAIN, N_EVAL_MEMBERS, N_KNOWN_NON, N_EVAL_NON, N_PUBLIC = 2500, 1250, 1250, 5000, 5000
RECIPE = {"hidden": (64,), "epochs": 40, "batch_size": 64, "standardize": True}
MODES = {"full probabilities": "", "top-1 probability": "top-k:1", "label only": "label-only"}
FPRS = (0.01, 0.001)


def _metrics(member, scores, seed):
    m = evaluate(member, scores, fprs=FPRS, n_bootstrap=1000, seed=seed)
    return {
        "auc": m.auc,
        "auc_ci": list(m.auc_ci),
        **{f"tpr@{k}": m.tpr_at_fpr[k] for k in m.tpr_at_fpr},
        **{f"tpr@{k}_ci": list(m.tpr_at_fpr_ci[k]) for k in m.tpr_at_fpr_ci},
        "resolvable": m.fpr_resolvable,
    }


def _art_attack(n_classes, n_features):
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
    from art.estimators.classification import BlackBoxClassifier

    # The estimator is never queried by fit/infer here: predictions are passed in (pred=...).
    dummy = BlackBoxClassifier(
        lambda x: np.full((len(x), n_classes), 1.0 / n_classes), (n_features,), n_classes, clip_values=(0.0, 1.0)
    )
    return MembershipInferenceBlackBox(dummy, input_type="prediction", attack_model_type="nn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/redteam_vs_art.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    seed = args.seed
    n_total = N_TRAIN + N_KNOWN_NON + N_EVAL_NON + N_PUBLIC
    X, y = generate_purchase(n_total, seed=seed)
    X, y = X.astype(np.float64), y
    train = slice(0, N_TRAIN)
    known_non = slice(N_TRAIN, N_TRAIN + N_KNOWN_NON)
    eval_non = slice(N_TRAIN + N_KNOWN_NON, N_TRAIN + N_KNOWN_NON + N_EVAL_NON)
    public = slice(n_total - N_PUBLIC, n_total)
    t0 = time.time()
    model = TorchRecipe(architecture="mlp", **RECIPE).train(X[train], y[train], n_classes=100, seed=seed + 1000)
    known_mem = np.arange(0, N_TRAIN - N_EVAL_MEMBERS)
    eval_mem = np.arange(N_TRAIN - N_EVAL_MEMBERS, N_TRAIN)
    Xe = np.concatenate([X[eval_mem], X[eval_non]])
    ye = np.concatenate([y[eval_mem], y[eval_non]])
    member = np.r_[np.ones(N_EVAL_MEMBERS), np.zeros(N_EVAL_NON)].astype(bool)
    acc = lambda a, b: float((model.query(a).argmax(1) == b).mean())  # noqa: E731
    info = {
        "train_accuracy": acc(X[train], y[train]),
        "test_accuracy": acc(X[eval_non], y[eval_non]),
        "n_eval_members": N_EVAL_MEMBERS,
        "n_eval_nonmembers": N_EVAL_NON,
        "n_public": N_PUBLIC,
    }
    print(json.dumps(info), flush=True)
    base = ShadowModelAttack(n_shadow=4, recipe="mlp", recipe_params=RECIPE, seed=seed).fit(
        X[public], y[public], n_classes=100
    )
    # full-probability shadow predictions, as ART's ShadowModels would produce
    shadow_pred = [wrap(m, n_classes=100).query(X[public]) for m in base.shadow_models_]
    shadow_mem = np.concatenate(base.shadow_members_)
    shadow_pred_all = np.concatenate(shadow_pred)
    y_pub = np.tile(y[public], len(shadow_pred))
    rows = []
    for mode, post in MODES.items():
        print(f"== {mode}", flush=True)

        def target(post=post):
            return wrap(model, n_classes=100, postprocess=post, seed=seed)

        # memberscope shadow
        t = time.time()
        tgt = target()
        atk = ShadowModelAttack(n_shadow=4, recipe="mlp", recipe_params=RECIPE, postprocess=post, seed=seed)
        atk.fit(X[public], y[public], n_classes=100, shadows=base)
        s = atk.score(tgt, Xe, ye)
        rows.append({"mode": mode, "attack": "memberscope shadow", "queries": tgt.queries_spent,
                     "seconds": time.time() - t, **_metrics(member, s, seed)})  # fmt: skip
        print(rows[-1], flush=True)
        # memberscope label-only
        t = time.time()
        tgt = target()
        lo = LabelOnlyAttack(n_queries=16, seed=seed).fit(X[public])
        local = [
            (wrap(m, n_classes=100, postprocess="label-only"), X[public][:2000], y[public][:2000], mem[:2000])
            for m, mem in zip(base.shadow_models_, base.shadow_members_, strict=True)
        ]
        lo.calibrate(local, fpr=0.01)
        s = lo.score(tgt, Xe, ye)
        rows.append({"mode": mode, "attack": "memberscope label-only", "queries": tgt.queries_spent,
                     "seconds": time.time() - t, **_metrics(member, s, seed)})  # fmt: skip
        rows[-1]["noise_scale"] = lo.noise_scale
        print(rows[-1], flush=True)
        # ART black box, fit on shadows' full probabilities
        t = time.time()
        tgt = target()
        observed = np.nan_to_num(tgt.query(Xe), nan=0.0)
        art = _art_attack(100, X.shape[1])
        art.fit(
            x=None,
            y=y_pub[shadow_mem],
            pred=shadow_pred_all[shadow_mem],
            test_x=None,
            test_y=y_pub[~shadow_mem],
            test_pred=shadow_pred_all[~shadow_mem],
        )
        s = art.infer(None, ye, pred=observed, probabilities=True)[:, -1]
        rows.append({"mode": mode, "attack": "ART BB (shadow)", "queries": tgt.queries_spent,
                     "seconds": time.time() - t, **_metrics(member, np.asarray(s, float), seed)})  # fmt: skip
        print(rows[-1], flush=True)
        # ART black box, supervised on known target members / non-members
        t = time.time()
        tgt = target()
        known_in = fill_withheld(tgt.query(X[known_mem]))
        known_out = fill_withheld(tgt.query(X[known_non]))
        observed = fill_withheld(tgt.query(Xe))
        art = _art_attack(100, X.shape[1])
        art.fit(x=None, y=y[known_mem], pred=known_in, test_x=None, test_y=y[known_non], test_pred=known_out)
        s = art.infer(None, ye, pred=observed, probabilities=True)[:, -1]
        rows.append({"mode": mode, "attack": "ART BB (supervised)", "queries": tgt.queries_spent,
                     "seconds": time.time() - t, **_metrics(member, np.asarray(s, float), seed)})  # fmt: skip
        print(rows[-1], flush=True)
    out = {"setting": info, "rows": rows, "seconds": time.time() - t0}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=float))
    print("| API | attack | queries | AUC | TPR @ 1% FPR [95% CI] | TPR @ 0.1% FPR [95% CI] |")
    print("|---|---|---:|---:|---|---|")
    for r in rows:
        ci1, ci01 = r["tpr@0.01_ci"], r["tpr@0.001_ci"]
        print(
            f"| {r['mode']} | {r['attack']} | {r['queries']:,} | {r['auc']:.3f} | {r['tpr@0.01']:.3f} "
            f"[{ci1[0]:.3f}, {ci1[1]:.3f}] | {r['tpr@0.001']:.3f} [{ci01[0]:.3f}, {ci01[1]:.3f}] |"
        )


if __name__ == "__main__":
    main()
