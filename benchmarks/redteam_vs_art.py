"""memberscope's API attacks vs IBM ART's MembershipInferenceBlackBox, same target.

Setting (purchase-synthetic, seed 0): a torch MLP (one hidden layer of 64 units, 40 epochs) trained on
2,500 records is the target, seen through three APIs: full probabilities, top-1 probability, label only.
Every attack is scored on the same 1,250 members and 5,000 non-members (enough to resolve 0.1% FPR:
5 false positives allowed). The attacker owns 5,000 disjoint "public" records for shadow models.

- memberscope shadow / lira-offline / rmia-offline: one :class:`~memberscope.redteam.shadowset.ShadowSet` of
  4 reference + 2 calibration shadows (same recipe as the target) seen through the API's post-processing; the
  2017 shadow classifier (logistic regression on sorted probabilities) and the per-record offline attacks;
  1 query per record.
- memberscope label-only: 16 bit-flip perturbations per record, flip probability chosen on the shadows;
  17 queries per record.
- ART BB (shadow, ``nn`` / ``rf`` / ``gb``): ``MembershipInferenceBlackBox`` fit on the same 6 shadows' answers
  *seen through the same post-processing* as the target's (withheld top-k entries filled as for memberscope),
  applied to the API's answers: each tool gets the same information.
- ART BB (supervised): the ``nn`` attack fit on 1,250 known target members and 1,250 known non-members (ART's
  documented use; a stronger attacker, who needs ground truth about the target); their queries count too.
- ART label-only (label-only API only; they use the arg-max alone): ``LabelOnlyGapAttack`` (correct or not,
  1 query per record) and ``LabelOnlyDecisionBoundary`` (HopSkipJump's L2 distance to the decision boundary, the
  score of Choquette-Choo et al.; threshold from ``calibrate_distance_threshold_unsupervised`` on the target, whose
  queries count). HopSkipJump spends thousands of queries per record, so the boundary attack is scored on a seeded
  subset of the candidates (``--boundary-members`` members + ``--boundary-nonmembers`` non-members, in a random
  order; ``--boundary-budget-s`` stops after the chunk of 50 records that spends it).

ART rows need ``pip install -c constraints.txt adversarial-robustness-toolbox`` (not part of setup.sh); without it
the script says so and runs memberscope's side only.
Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/redteam_vs_art.py [--out benchmarks/results/redteam_vs_art.json]``.
Parts on their own, merged into an existing results file (rows with the same API and attack are replaced; the
file's ``runs`` lists each part's arguments and load), e.g. ART's black box, then its boundary attack alone::

    benchmarks/redteam_vs_art.py --modes label-only --skip-memberscope --art-label-only --merge
    benchmarks/redteam_vs_art.py --modes label-only --skip-memberscope --art-models --art-label-only boundary --merge

Every row also says how many members and non-members tie at its top score (``tied_at_top_score``).
"""

from __future__ import annotations

import argparse
import json
import os
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
MODE_NAMES = {"full": "full probabilities", "top-1": "top-1 probability", "label-only": "label only"}
ART_MODELS = ("nn", "rf", "gb", "supervised")
ART_LABEL_ONLY = ("gap", "boundary")
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


def _art_available() -> bool:
    try:
        import art.attacks.inference.membership_inference  # noqa: F401
    except ImportError:
        return False
    return True


def _shadow_answers(shadows, post, seed):
    """Every shadow's answers on the attacker's records, seen through ``post``, and which records it trained on:
    ``(pred (n_models · n, n_classes), member (n_models · n,), labels (n_models · n,))``."""
    split = shadows.split
    preds, members = [], []
    groups = [
        (shadows.reference_models, split.reference, shadows.reference_members),
        (shadows.calibration_models, split.calibration, shadows.calibration_members),
    ]
    for models, rows, trained in groups:
        for model, mask in zip(models, trained, strict=True):
            member = np.zeros(len(shadows.X), bool)
            member[rows[mask]] = True
            preds.append(fill_withheld(wrap(model, n_classes=100, postprocess=post, seed=seed).query(shadows.X)))
            members.append(member)
    return np.concatenate(preds), np.concatenate(members), np.tile(shadows.y, len(preds))


def _art_attack(n_classes, n_features, attack_model_type="nn"):
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
    from art.estimators.classification import BlackBoxClassifier

    # The estimator is never queried by fit/infer here: predictions are passed in (pred=...).
    dummy = BlackBoxClassifier(
        lambda x: np.full((len(x), n_classes), 1.0 / n_classes), (n_features,), n_classes, clip_values=(0.0, 1.0)
    )
    return MembershipInferenceBlackBox(dummy, input_type="prediction", attack_model_type=attack_model_type)


def _art_label_only_target(tgt, n_features):
    """An ART ``BlackBoxClassifier`` that asks ``tgt`` (a label-only :class:`~memberscope.targets.Target`) and sees
    its one-hot answers; every query goes through ``tgt`` and is counted there. Inputs are clipped to [0, 1], the
    range of the purchase records (HopSkipJump and the unsupervised calibration need ``clip_values``)."""
    from art.estimators.classification import BlackBoxClassifier

    return BlackBoxClassifier(
        lambda x: fill_withheld(tgt.query(np.asarray(x, np.float64))), (n_features,), 100, clip_values=(0.0, 1.0)
    )


def _seed_globals(seed: int) -> None:
    """Seed the process-wide generators ART draws from (its attack models' initialisation, scikit-learn estimators
    without ``random_state``, HopSkipJump's random directions), so that ART's rows repeat with the seed."""
    import torch

    np.random.seed(seed)
    torch.manual_seed(seed)


def _load_rows(path: Path) -> tuple[list, list]:
    if not path.exists():
        return [], []
    old = json.loads(path.read_text())
    return old.get("rows", []), old.get("runs", [])


def _uptime() -> list[float]:
    """The 1-, 5- and 15-minute load averages (as ``uptime`` prints them)."""
    return [round(v, 2) for v in os.getloadavg()]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/redteam_vs_art.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--modes", nargs="+", choices=list(MODE_NAMES), default=list(MODE_NAMES), help="APIs to run (default all)"
    )
    parser.add_argument("--skip-memberscope", action="store_true", help="run ART's rows only")
    parser.add_argument(
        "--art-models",
        nargs="*",
        choices=ART_MODELS,
        default=list(ART_MODELS),
        help="ART MembershipInferenceBlackBox rows: attack models fit on the shadows, and/or 'supervised' "
        "(default all; none with the flag alone)",
    )
    parser.add_argument(
        "--art-label-only",
        nargs="*",
        choices=ART_LABEL_ONLY,
        default=list(ART_LABEL_ONLY),
        help="ART's label-only attacks, run on the label-only API (default both; none with the flag alone)",
    )
    parser.add_argument("--boundary-members", type=int, default=200, help="members scored by the boundary attack")
    parser.add_argument("--boundary-nonmembers", type=int, default=800, help="non-members scored by it")
    parser.add_argument(
        "--boundary-budget-s",
        type=float,
        default=None,
        help="stop scoring further chunks of 50 records once the boundary attack has scored for this long",
    )
    parser.add_argument(
        "--on-boundary-subset",
        type=int,
        nargs="+",
        default=[],
        metavar="N",
        help="also score every other row on the first N records of the boundary attack's subset (its scored "
        "prefix; several N allowed)",
    )
    parser.add_argument("--hsj-max-iter", type=int, default=50, help="HopSkipJump max_iter (ART's default 50)")
    parser.add_argument("--hsj-max-eval", type=int, default=10000, help="HopSkipJump max_eval (ART's default)")
    parser.add_argument("--hsj-init-eval", type=int, default=100, help="HopSkipJump init_eval (ART's default)")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the rows already in --out, replacing those with the same API and attack",
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    import sys

    import torch

    torch.set_num_threads(1)
    seed = args.seed
    out_path = Path(args.out)
    run = {
        "id": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "loadavg_start": _uptime(),
    }
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
    art_ok = _art_available()
    if not art_ok:
        print(
            "IBM ART is not installed (pip install -c constraints.txt adversarial-robustness-toolbox): "
            "running memberscope's attacks only",
            flush=True,
        )
    base = ShadowModelAttack(attack="shadow", n_shadow=4, recipe="mlp", recipe_params=RECIPE, seed=seed).fit(
        X[public], y[public], n_classes=100
    )
    shadows = base.shadows_
    rows = []

    def save():
        # Read the file again at every save: runs of other parts may have merged into it meanwhile.
        old_rows, runs = _load_rows(out_path) if args.merge else ([], [])
        runs = [r for r in runs if r.get("id") != run["id"]] + [run]
        new_keys = {(r["mode"], r["attack"]) for r in rows}
        kept = [r for r in old_rows if (r["mode"], r["attack"]) not in new_keys]
        order = {m: i for i, m in enumerate(MODES)}
        merged = sorted(kept + rows, key=lambda r: order.get(r["mode"], len(order)))  # stable: keeps row order
        run.update(loadavg_end=_uptime(), seconds=time.time() - t0)
        out = {"setting": info, "art_installed": art_ok, "rows": merged, "runs": runs, "seconds": time.time() - t0}
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=2, default=float))
        tmp.replace(out_path)
        return merged

    order = boundary_sample(member, args.boundary_members, args.boundary_nonmembers, seed)
    subsets = {n: order[:n] for n in args.on_boundary_subset}

    def record(mode, attack, tgt, t, scores, sample=None, **extra):
        truth = member if sample is None else member[sample]
        top = np.asarray(scores, float) == np.max(scores)
        # A score that is coarse at the top ties members with non-members there: no threshold reaches a low FPR.
        extra["tied_at_top_score"] = {"members": int((top & truth).sum()), "nonmembers": int((top & ~truth).sum())}
        if subsets and sample is None:
            scores_ = np.asarray(scores, float)
            extra["on_boundary_subset"] = {str(n): _metrics(member[i], scores_[i], seed) for n, i in subsets.items()}
        rows.append({"mode": mode, "attack": attack, "queries": tgt.queries_spent, "seconds": time.time() - t,
                     "run": run["id"], **_metrics(truth, np.asarray(scores, float), seed), **extra})  # fmt: skip
        print(rows[-1], flush=True)
        save()  # after every row: a run stopped by its time limit keeps what it measured

    for mode, post in MODES.items():
        if mode not in {MODE_NAMES[m] for m in args.modes}:
            continue
        print(f"== {mode}", flush=True)

        def target(post=post):
            return wrap(model, n_classes=100, postprocess=post, seed=seed)

        if not args.skip_memberscope:
            # memberscope: the shadow classifier and the per-record offline attacks, on the same shadows
            for attack in ("shadow", "lira-offline", "rmia-offline"):
                t, tgt = time.time(), target()
                atk = ShadowModelAttack(attack=attack, recipe="mlp", recipe_params=RECIPE, postprocess=post, seed=seed)
                atk.fit(X[public], y[public], n_classes=100, shadows=shadows)
                record(mode, f"memberscope {attack}", tgt, t, atk.score(tgt, Xe, ye))
            # memberscope label-only (uses the arg-max only: the same on every API)
            t, tgt = time.time(), target()
            lo = LabelOnlyAttack(n_queries=16, seed=seed).fit(X[public])
            pred, shadow_mem, _ = _shadow_answers(shadows, "label-only", seed)
            local = [
                (wrap(m, n_classes=100, postprocess="label-only"), shadows.X[:2000], shadows.y[:2000], mem[:2000])
                for m, mem in zip(shadows.models, shadow_mem.reshape(len(shadows.models), -1), strict=True)
            ]
            lo.calibrate(local, fpr=0.01)
            record(mode, "memberscope label-only", tgt, t, lo.score(tgt, Xe, ye), noise_scale=lo.noise_scale)
        if not art_ok:
            continue
        # ART black box, fit on the shadows' answers seen through the API's post-processing
        pred, shadow_mem, y_pub = _shadow_answers(shadows, post, seed)
        for kind in [k for k in ("nn", "rf", "gb") if k in args.art_models]:
            t, tgt = time.time(), target()
            observed = fill_withheld(tgt.query(Xe))
            _seed_globals(seed)
            art = _art_attack(100, X.shape[1], kind)
            art.fit(
                x=None,
                y=y_pub[shadow_mem],
                pred=pred[shadow_mem],
                test_x=None,
                test_y=y_pub[~shadow_mem],
                test_pred=pred[~shadow_mem],
            )
            record(
                mode, f"ART BB {kind} (shadow)", tgt, t, art.infer(None, ye, pred=observed, probabilities=True)[:, -1]
            )
        if "supervised" in args.art_models:
            # ART black box, supervised on known target members / non-members
            t, tgt = time.time(), target()
            known_in = fill_withheld(tgt.query(X[known_mem]))
            known_out = fill_withheld(tgt.query(X[known_non]))
            observed = fill_withheld(tgt.query(Xe))
            _seed_globals(seed)
            art = _art_attack(100, X.shape[1])
            art.fit(x=None, y=y[known_mem], pred=known_in, test_x=None, test_y=y[known_non], test_pred=known_out)
            scores = art.infer(None, ye, pred=observed, probabilities=True)[:, -1]
            record(mode, "ART BB nn (supervised)", tgt, t, scores)
        if post == "label-only":
            _art_label_only_rows(args, record, target, Xe, ye, member, seed)
    merged = save()
    print("| API | attack | queries | AUC | TPR @ 1% FPR [95% CI] | TPR @ 0.1% FPR [95% CI] | seconds |")
    print("|---|---|---:|---:|---|---|---:|")
    for r in merged:
        ci1, ci01 = r["tpr@0.01_ci"], r["tpr@0.001_ci"]
        print(
            f"| {r['mode']} | {r['attack']} | {r['queries']:,} | {r['auc']:.3f} | {r['tpr@0.01']:.3f} "
            f"[{ci1[0]:.3f}, {ci1[1]:.3f}] | {r['tpr@0.001']:.3f} [{ci01[0]:.3f}, {ci01[1]:.3f}] | "
            f"{r['seconds']:.0f} |"
        )


def boundary_sample(member: np.ndarray, n_members: int, n_nonmembers: int, seed: int) -> np.ndarray:
    """Indices into the scored records of the boundary attack's seeded subset, in the random order it scores them.

    HopSkipJump asks thousands of queries per record, so the attack scores ``n_members`` members and
    ``n_nonmembers`` non-members; scored in chunks in this order, a time budget that runs out leaves a random
    subset (a prefix) scored. ``--on-boundary-subset`` scores the other attacks on the same prefix.
    """
    rng = np.random.default_rng(seed)
    members_idx = np.flatnonzero(member)
    non_idx = np.flatnonzero(~member)
    return rng.permutation(
        np.r_[
            rng.choice(members_idx, min(n_members, len(members_idx)), replace=False),
            rng.choice(non_idx, min(n_nonmembers, len(non_idx)), replace=False),
        ]
    )


def _art_label_only_rows(args, record, target, Xe, ye, member, seed) -> None:
    """ART's label-only attacks on the label-only API, configured as ART's docs and notebook do."""
    from art.attacks.inference.membership_inference import LabelOnlyDecisionBoundary, LabelOnlyGapAttack

    onehot = np.eye(100)[ye]
    mode = "label only"
    if "gap" in args.art_label_only:
        t, tgt = time.time(), target()
        gap = LabelOnlyGapAttack(_art_label_only_target(tgt, Xe.shape[1]))
        scores = gap.infer(Xe, onehot, probabilities=True)[:, 1]
        record(mode, "ART LabelOnlyGapAttack", tgt, t, scores)
    if "boundary" in args.art_label_only:
        sample = boundary_sample(member, args.boundary_members, args.boundary_nonmembers, seed)
        hsj = {"max_iter": args.hsj_max_iter, "max_eval": args.hsj_max_eval, "init_eval": args.hsj_init_eval}
        t, tgt = time.time(), target()
        attack = LabelOnlyDecisionBoundary(_art_label_only_target(tgt, Xe.shape[1]))
        _seed_globals(seed)  # ART draws the calibration's random records and HopSkipJump's from numpy's global state
        attack.calibrate_distance_threshold_unsupervised(top_t=50, num_samples=100, max_queries=1, verbose=False, **hsj)
        calibration_queries = tgt.queries_spent
        print(f"boundary calibration: tau {attack.distance_threshold_tau:.4f}, {calibration_queries:,} queries, "
              f"{time.time() - t:.0f} s; scoring {len(sample)} records", flush=True)  # fmt: skip
        t_infer = time.time()
        chunks = []
        for start in range(0, len(sample), 50):
            part = sample[start : start + 50]
            chunks.append(attack.infer(Xe[part], onehot[part], probabilities=True, verbose=False, **hsj)[:, 1])
            print(f"boundary: {start + len(part)} records scored, {time.time() - t_infer:.0f} s", flush=True)
            if args.boundary_budget_s is not None and time.time() - t_infer > args.boundary_budget_s:
                print(f"boundary: time budget of {args.boundary_budget_s} s spent; stopping", flush=True)
                break
        p_member = np.concatenate(chunks)
        sample = sample[: len(p_member)]
        # infer's probabilities are sigmoid(distance - tau): monotone in the distance, so the ROC is the distance's.
        called = p_member > 0.5
        truth = member[sample]
        record(
            mode,
            "ART LabelOnlyDecisionBoundary",
            tgt,
            t,
            p_member,
            sample=sample,
            n_members=int(truth.sum()),
            n_nonmembers=int((~truth).sum()),
            calibration="calibrate_distance_threshold_unsupervised(top_t=50, num_samples=100, max_queries=1)",
            hopskipjump=hsj,
            distance_threshold_tau=float(attack.distance_threshold_tau),
            calibration_queries=calibration_queries,
            budget_s=args.boundary_budget_s,
            queries_per_record=(tgt.queries_spent - calibration_queries) / len(sample),
            infer_seconds=time.time() - t_infer,
            at_tau={"tpr": float(called[truth].mean()), "fpr": float(called[~truth].mean())},
        )


if __name__ == "__main__":
    main()
