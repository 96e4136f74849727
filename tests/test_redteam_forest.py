"""The red team against a random forest served over HTTP (issue 14's failing examples, sized to run in seconds).

The default attack used to report "no measurable leakage" against an overfit forest whose full probabilities it
saw, its "member" verdicts at four times the requested FPR: MLP shadows did not answer like the forest. Here the
shadows' family is chosen by agreement with the target, the threshold is held to the FPR on the attacker's own
held-out records, and a mismatched forced family or a target that never saw the candidates gets no all-clear.
"""

import numpy as np
import pytest
from redteam_server import ModelServer

from memberscope.metrics import roc_curve, tpr_at_fpr
from memberscope.privacy import clopper_pearson_interval
from memberscope.redteam import run_redteam
from memberscope.targets import HttpTarget

N_MEMBERS, N_FEATURES, N_CLASSES = 400, 30, 10


def _data(n: int, seed: int):
    """Binary records whose class depends on a few features, with label noise: a forest overfits them."""
    rng = np.random.default_rng(seed)
    X = (rng.random((n, N_FEATURES)) < 0.3).astype(np.float64)
    w = np.random.default_rng(99).normal(size=(N_FEATURES, N_CLASSES))
    y = np.argmax(X @ w + rng.gumbel(size=(n, N_CLASSES)), axis=1)
    return X, y


@pytest.fixture(scope="module")
def forest():
    from sklearn.ensemble import RandomForestClassifier

    X, y = _data(N_MEMBERS * 2 + 1000, seed=1)  # 1,000 public records: 200 held out certify 1% FPR (at most 2x)
    members, nonmembers, public = slice(0, N_MEMBERS), slice(N_MEMBERS, 2 * N_MEMBERS), slice(2 * N_MEMBERS, None)
    model = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(X[members], y[members])
    server = ModelServer(model.predict_proba)
    records = np.r_[X[members], X[nonmembers]]
    labels = np.r_[y[members], y[nonmembers]]
    member = np.r_[np.ones(N_MEMBERS, bool), np.zeros(N_MEMBERS, bool)]
    yield {"server": server, "records": records, "labels": labels, "member": member, "public": (X[public], y[public])}
    server.close()


def _run(forest, **kwargs):
    target = HttpTarget(forest["server"].url("full"), n_classes=N_CLASSES, batch_size=500, timeout=120)
    with target:
        return run_redteam(
            target,
            forest["records"],
            forest["labels"],
            *forest["public"],
            n_classes=N_CLASSES,
            member=forest["member"],
            seed=0,
            **kwargs,
        )


@pytest.fixture(scope="module")
def default_run(forest):
    return _run(forest)


def test_forest_shadows_are_chosen_and_find_members_at_the_fpr(forest, default_run):
    result = default_run
    rt = result.results["redteam"]
    # Recon reads the forest's own 1/100 steps (not rounding) and the forest shadows agree most.
    assert rt["exposure"]["grid"] == 100 and rt["exposure"]["family_hint"] == "tree-ensemble"
    assert rt["shadows"]["family"] == "random-forest"
    agreements = {a["family"]: a["score"] for a in rt["shadows"]["agreement"]}
    assert set(agreements) == {"random-forest", "mlp", "logreg", "gradient-boosting"}
    assert agreements["random-forest"] == max(agreements.values())
    member = forest["member"]
    fpr_, tpr_, _ = roc_curve(member, result.scores)
    assert tpr_at_fpr(fpr_, tpr_, 0.01) >= 0.5  # the true TPR at 1% FPR, from the ground truth
    false = int((result.verdicts[~member] == "member").sum())
    assert clopper_pearson_interval(false, int((~member).sum()))[0] <= 0.02  # at most 2x the FPR asked for
    assert rt["conclusion"]["status"] == "leakage"
    assert not any("weight decay" in r or "DP-SGD" in r for r in rt["recommendations"])  # advice for trees


def test_not_member_verdicts_clear_few_true_members(forest, default_run):
    # The trial's forest: 209 of 300 true members were called "not-member", every score below the member threshold
    # read as non-membership. A not-member verdict now needs a score below the threshold calibrated on the shadows'
    # member scores at FNR = the FPR asked for: true members are cleared at most about that often.
    result, member = default_run, forest["member"]
    cal = result.results["redteam"]["calibration"]
    assert cal["fnr_target"] == 0.01 and cal["shadow_fnr"] <= 0.01 and len(cal["shadow_fnr_ci"]) == 2
    cleared = int((result.verdicts[member] == "not-member").sum())
    assert clopper_pearson_interval(cleared, int(member.sum()))[0] <= 0.02  # at most 2x the rate asked for
    false = int((result.verdicts[~member] == "member").sum())
    assert clopper_pearson_interval(false, int((~member).sum()))[0] <= 0.02  # member verdicts still hold their FPR
    not_member = result.scores[result.verdicts == "not-member"]
    assert not_member.size == 0 or not_member.max() < cal["not_member_band"][0]


def test_a_mismatched_forced_family_is_inconclusive_not_cleared(forest):
    result = _run(forest, recipe="logreg", attack="lira-offline")
    rt = result.results["redteam"]
    assert rt["shadows"]["family"] == "logreg" and rt["shadows"]["fit"]["poor"]
    assert rt["verdicts"]["not-member"] == 0 and rt["conclusion"]["status"] != "no measurable leakage"
    member = forest["member"]
    false = int((result.verdicts[~member] == "member").sum())
    assert clopper_pearson_interval(false, int((~member).sum()))[0] <= 0.02


def test_a_target_that_never_saw_the_candidates_is_not_called_leaky(forest):
    # The candidates' "members" were never in the training set: swap in fresh records for them.
    X_fresh, y_fresh = _data(N_MEMBERS, seed=5)
    fresh = {**forest, "records": np.r_[X_fresh, forest["records"][N_MEMBERS:]]}
    fresh["labels"] = np.r_[y_fresh, forest["labels"][N_MEMBERS:]]
    result = _run(fresh)
    rt = result.results["redteam"]
    n_members = rt["verdicts"]["member"]
    assert clopper_pearson_interval(n_members, 2 * N_MEMBERS)[0] <= 0.02  # no more than false positives explain
    assert rt["conclusion"]["status"] != "leakage"


@pytest.fixture(scope="module")
def named_field_server(forest):
    """An in-house API: ``{"features": {"f0": ..., ...}}`` in, ``{"label": "segment_03", "confidence": 0.41}`` out."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from sklearn.ensemble import RandomForestClassifier

    X, y = forest["records"][:N_MEMBERS], forest["labels"][:N_MEMBERS]
    model = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(X, y)
    columns = [f"f{j}" for j in range(N_FEATURES)]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            probs = model.predict_proba(np.array([[body["features"][c] for c in columns]]))[0]
            out = json.dumps({"label": f"segment_{int(probs.argmax()):02d}", "confidence": float(probs.max())})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out.encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/score", columns
    server.shutdown()
    server.server_close()


def test_named_fields_in_label_and_confidence_out_from_the_cli(forest, named_field_server, tmp_path, capsys):
    import json

    import pandas as pd
    from cli_helpers import run_cli

    url, columns = named_field_server
    n = 100  # one record per request: a small sample of members and non-members
    rows = np.r_[np.arange(n), N_MEMBERS + np.arange(n)]
    people = pd.DataFrame(forest["records"][rows], columns=columns)
    people["label"], people["member"] = forest["labels"][rows], np.r_[np.ones(n, int), np.zeros(n, int)]
    people["id"] = [f"person-{i}" for i in rows]
    people.to_csv(tmp_path / "people.csv", index=False)
    Xp, yp = forest["public"]
    public = pd.DataFrame(Xp[:300], columns=columns)
    public["label"] = yp[:300]
    public.to_csv(tmp_path / "public.csv", index=False)
    classes = ",".join(f"segment_{c:02d}" for c in range(N_CLASSES))
    code, out, err = run_cli(
        "attack", "--target", url, "--records", str(tmp_path / "people.csv"), "--shadow-data",
        str(tmp_path / "public.csv"), "--out", str(tmp_path / "out"), "--member-column", "member", "--id-column", "id",
        "--request-template", '{"features": "$record_object"}', "--output-path", "", "--answer-label", "label",
        "--answer-confidence", "confidence", "--classes", classes, "--batch-size", "1", "--timeout", "60",
        "--shadow-model", "random-forest", "--no-cache", capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    rt = results["redteam"]
    assert rt["exposure"]["mode"] == "top-k" and rt["exposure"]["top_k"] == 1
    assert rt["shadows"]["family"] == "random-forest" and not rt["shadows"]["fit"]["poor"]
    assert results["attacks"][rt["attack"]]["auc"] > 0.7
    assert rt["conclusion"]["headline"] in out.replace("\n", " ") or rt["conclusion"]["status"] in out.lower()
    assert "'not-member' only for scores that shadow members reach at most at FNR 0.01" in " ".join(out.split())
    verdicts = pd.read_csv(tmp_path / "out" / "verdicts.csv")
    assert verdicts["record"][0] == "person-0" and len(verdicts) == 2 * n


def test_recon_tells_a_forest_grid_from_rounding(forest, capsys):
    from cli_helpers import run_cli

    url = forest["server"].url("full")
    code, out, err = run_cli("recon", url, "--n-features", str(N_FEATURES), "--timeout", "60", capsys=capsys)
    assert code == 0, err
    text = " ".join(out.split())
    assert "on a grid of 1/100 (the model's own steps, not rounding)" in text and "rounded to" not in text
    assert "tree ensemble" in text


def test_a_forest_on_digits_gets_forest_shadows_and_no_all_clear():
    # Issue 14: a forest on digits was called leak-free, its member verdicts at 13.7% FPR. Logistic-regression
    # shadows trained on a quarter of the records agree with it more on held-out confidences than forest shadows
    # do; only forest shadows answer on its 1/100 grid.
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    from memberscope.targets import wrap

    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X[order] / 16.0, y[order]
    model = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(X[:600], y[:600])
    member = np.r_[np.ones(600, bool), np.zeros(400, bool)]
    result = run_redteam(wrap(model, n_classes=10), X[:1000], y[:1000], X[1000:], y[1000:], member=member, seed=0)
    rt = result.results["redteam"]
    assert rt["exposure"]["grid"] == 100 and rt["shadows"]["family"] == "random-forest"
    shares = {a["family"]: a["grid_share"] for a in rt["shadows"]["agreement"]}
    assert shares["random-forest"] == 1.0 and shares["logreg"] < 0.5
    false = int((result.verdicts[~member] == "member").sum())
    assert clopper_pearson_interval(false, 400)[0] <= 0.02
    assert rt["conclusion"]["status"] != "no measurable leakage"


def test_ground_truth_of_one_class_is_said_to_score_nothing(forest):
    # The second trial: a records file of members only, with its member column, ended "no ground truth" silently.
    members = forest["member"]
    target = HttpTarget(forest["server"].url("full"), n_classes=N_CLASSES, batch_size=500, timeout=120)
    with target:
        result = run_redteam(
            target, forest["records"][members][:60], forest["labels"][members][:60], *forest["public"],
            n_classes=N_CLASSES, member=np.ones(60, bool), seed=0,
        )  # fmt: skip
    assert not result.results.attacks
    assert any("60 members and 0 non-members" in w for w in result.results.warnings)
