"""End to end: `memberscope recon` and `memberscope attack` against a real HTTP server on 127.0.0.1.

The server (tests/redteam_server.py) serves one overfit torch MLP, trained on 500 purchase-synthetic
records, in four modes: full probabilities, top-1 probability, rounded to 1 decimal, label only.
"""

import html
import json
import re

import numpy as np
import pandas as pd
import pytest
from cli_helpers import run_cli
from redteam_server import API_KEY, ModelServer, closed_port_url, one_torch_thread

from memberscope.datasets.purchase_synthetic import generate_purchase
from memberscope.privacy import clopper_pearson_interval as clopper_pearson
from memberscope.redteam.recon import recon
from memberscope.targets import HttpTarget

_one_thread = pytest.fixture(scope="module", autouse=True)(one_torch_thread)

N_MEMBERS, N_NONMEMBERS, N_SHADOW = 500, 1000, 1000
RECIPE = {"hidden": (64,), "epochs": 40, "batch_size": 64, "standardize": True}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from scipy.special import softmax

    from memberscope.recipes import TorchRecipe

    X, y = generate_purchase(N_MEMBERS + N_NONMEMBERS + N_SHADOW, seed=3)
    model = TorchRecipe(architecture="mlp", **RECIPE).train(X[:N_MEMBERS], y[:N_MEMBERS], n_classes=100, seed=11)
    model.query(X[:2])  # warm up, so the first request is not slowed by lazy initialisation
    server = ModelServer(lambda Z: softmax(model.query(Z), axis=1), log_proba=lambda Z: np.asarray(model.query(Z)))
    folder = tmp_path_factory.mktemp("redteam")
    cols = [f"item{j}" for j in range(X.shape[1])]
    n_people = N_MEMBERS + N_NONMEMBERS
    people = pd.DataFrame(X[:n_people].astype(int), columns=cols)
    people["label"] = y[:n_people]
    people["member"] = np.r_[np.ones(N_MEMBERS, int), np.zeros(N_NONMEMBERS, int)]
    people["name"] = [f"person-{i}" for i in range(n_people)]
    people.to_csv(folder / "people.csv", index=False)
    public = pd.DataFrame(X[n_people:].astype(int), columns=cols)
    public["label"] = y[n_people:]
    public.to_csv(folder / "public.csv", index=False)
    yield {"server": server, "folder": folder, "X": X, "y": y, "model": model}
    server.close()


def _attack(setup, url, out, *extra, capsys):
    f = setup["folder"]
    args = ["attack", "--target", url, "--records", str(f / "people.csv"), "--shadow-data", str(f / "public.csv")]
    args += ["--fpr", "0.01", "--out", str(out), "--member-column", "member", "--id-column", "name"]
    args += [
        "--shadow-model",
        "mlp",
        "--shadow-param",
        "hidden=[64]",
        "--shadow-param",
        "epochs=40",
        "--shadow-param",
        "standardize=true",
    ]
    # A generous timeout: on a loaded CI machine a 500-record request can take seconds.
    return run_cli(*args, "--batch-size", "500", "--timeout", "120", *extra, capsys=capsys)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("full", {"mode": "probabilities", "top_k": None, "decimals": None}),
        ("top1", {"mode": "top-k", "top_k": 1, "decimals": None}),
        ("round1", {"mode": "rounded", "top_k": None, "decimals": 1}),
        ("label", {"mode": "label-only", "top_k": None, "decimals": None}),
        ("logits", {"mode": "logits", "top_k": None, "decimals": None}),
    ],
)
def test_recon_identifies_each_mode(setup, mode, expected, capsys, tmp_path):
    url = setup["server"].url(mode)
    code, out, err = run_cli(
        "recon",
        url,
        "--records",
        str(setup["folder"] / "public.csv"),
        "--json",
        "--burst",
        "2",
        "--timeout",
        "120",
        capsys=capsys,
    )
    assert code == 0, err
    report = json.loads(out)
    assert {k: report[k] for k in expected} == expected
    assert report["deterministic"] is True and report["rate_limited"] is False
    assert report["n_classes"] == 100 and report["queries_spent"] == 8 * 2 + 2
    assert report["attacks_possible"] == (
        ["label-only"] if mode == "label" else ["lira-offline", "rmia-offline", "shadow", "label-only"]
    )
    code, out, _ = run_cli("recon", url, "--n-features", "600", "--n-classes", "100", "--timeout", "120", capsys=capsys)
    assert code == 0 and "attacks possible" in out


@pytest.mark.parametrize("mode", ["full", "top1", "round1"])
def test_shadow_attack_over_http_with_calibrated_verdicts(setup, mode, capsys, tmp_path):
    code, out, err = _attack(setup, setup["server"].url(mode), tmp_path, capsys=capsys)
    assert code == 0, err
    results = json.loads((tmp_path / "results.json").read_text())
    rt = results["redteam"]
    name = rt["attack"]  # the strongest on the calibration shadows
    assert results["kind"] == "redteam" and name in ("lira-offline", "rmia-offline", "shadow")
    # recon, the attacker's held-out records (known non-members: the target-side FPR check), the records
    assert rt["target"]["queries_spent"] == 16 + N_SHADOW // 5 + N_MEMBERS + N_NONMEMBERS
    assert set(rt["calibration"]) >= {
        "fpr_target", "threshold", "shadow_tpr", "shadow_tpr_ci", "shadow_fpr", "shadow_fpr_ci", "n_shadow_models"
    }  # fmt: skip
    metrics = results["attacks"][name]
    assert metrics["auc"] > 0.9
    # "Member" verdicts hold the FPR on the target's true non-members: at most 2x the 1% asked for, with its CI.
    k = round(metrics["verdict_fpr"] * N_NONMEMBERS)
    lo, hi = clopper_pearson(k, N_NONMEMBERS)
    assert lo <= 0.02, (k, lo, hi)
    check = rt["target_check"]
    assert check["n_nonmembers"] == N_SHADOW // 5 and check["status"] in ("ok", "too-strict")
    verdicts = pd.read_csv(tmp_path / "verdicts.csv")
    assert list(verdicts.columns) == ["record", "score", "verdict"] and verdicts["record"][0] == "person-0"
    assert sum(rt["verdicts"].values()) == len(verdicts) == N_MEMBERS + N_NONMEMBERS
    # Rounded to 1 decimal, scores tie, and the threshold the target's 200 known non-members allow at 1% is strict.
    share = 0.2 if mode == "round1" else 0.5
    assert rt["verdicts"]["member"] == (verdicts["verdict"] == "member").sum() > share * N_MEMBERS
    assert any("memorises" in r for r in rt["recommendations"])
    assert "verdicts:" in out
    # The same headline in the console and the report the command writes by default.
    from memberscope.results import read_results

    risk = read_results(tmp_path).risk()
    assert f"Risk: {risk.level.upper()}" in out and results["headline"]["risk"]["level"] == risk.level
    page = (tmp_path / "report.html").read_text()
    assert f"Risk: {risk.level.upper()}" in page


def test_an_inconclusive_attack_says_its_conclusion_once_with_rates_as_percentages(setup, capsys, tmp_path):
    # 200 known non-members cannot certify a threshold at FPR 0.1%: the run is inconclusive.
    code, out, err = _attack(setup, setup["server"].url("full"), tmp_path, "--fpr", "0.001", capsys=capsys)
    assert code == 0, err
    results = json.loads((tmp_path / "results.json").read_text())
    rt = results["redteam"]
    assert rt["conclusion"]["status"] == "inconclusive"
    paragraph = rt["conclusion"]["headline"]
    flat = " ".join(out.split())  # rich wraps the console's lines
    assert flat.count(" ".join(paragraph.split())) == 1, flat
    page = (tmp_path / "report.html").read_text()
    assert html.unescape(page).count(paragraph) == 1
    assert "Do not read the absence of member verdicts as safety" not in paragraph
    # Rates as percentages, measured numbers to a few significant digits (the threshold was printed with 16).
    assert "FPR 0.1%" in flat and "FPR 0.001" not in flat and "FPR 0.001" not in page
    threshold = f"{rt['calibration']['threshold']:.4g}"
    assert f"(threshold {threshold})" in flat and f"<td>{threshold}</td>" in page
    long_float = re.compile(r"\d\.\d{6,}")
    assert not long_float.search(flat), long_float.search(flat)
    body = re.sub(r"<(style|script)\b.*?</\1>|<img[^>]*>", "", page, flags=re.S)
    assert not long_float.search(body), long_float.search(body)
    # The ground-truth figures are said to come from the supplied membership, beside the verdicts without it.
    assert "membership you supplied (ground truth)" in flat and "Verdicts (without ground truth)" in flat


def test_label_only_attack_over_http(setup, capsys, tmp_path):
    code, _, err = _attack(setup, setup["server"].url("label"), tmp_path, "--label-queries", "6", capsys=capsys)
    assert code == 0, err
    results = json.loads((tmp_path / "results.json").read_text())
    rt = results["redteam"]
    assert rt["exposure"]["mode"] == "label-only" and rt["attack"] == "label-only"
    # recon, the held-out records once (the shadows' agreement), then 1 + 6 queries per record and held-out record
    assert rt["target"]["queries_spent"] == 16 + N_SHADOW // 5 + 7 * (N_SHADOW // 5 + N_MEMBERS + N_NONMEMBERS)
    assert results["attacks"]["label-only"]["auc"] > 0.8
    assert any("already shows labels only" in r for r in rt["recommendations"])


@pytest.mark.parametrize(
    ("url_params", "extra", "message"),
    [
        ({"fail_after": 3, "fail": "html"}, [], "not JSON"),
        ({"fail_after": 3, "fail": "401"}, [], "answered 401"),
        ({"fail_after": 3, "fail": "path"}, [], "JSON path 'predictions' does not match"),
        ({}, ["--query-budget", "600"], "exceed the query budget of 600"),
    ],
)
def test_bad_endpoints_exit_3_and_keep_answers(setup, url_params, extra, message, capsys, tmp_path):
    url = setup["server"].url("full", **url_params)
    code, _, err = _attack(setup, url, tmp_path, *extra, capsys=capsys)
    assert code == 3 and message in err and "Traceback" not in err  # the endpoint failed: exit 3, not a typo
    saved = np.load(tmp_path / "answered.npz")
    # recon's 2 x 8 probes, then the attacker's 200 held-out records (one batch); the failure comes with the next
    # batch, and the budget case stops before it.
    n = 16 + N_SHADOW // 5
    assert saved["X"].shape == (n, 600) and saved["observed"].shape == (n, 100)
    from scipy.special import softmax

    np.testing.assert_allclose(saved["observed"], softmax(setup["model"].query(saved["X"]), axis=1), atol=1e-6)
    assert f"{n} answers received are saved" in err


def test_unreachable_url_and_401_without_key(setup, capsys, tmp_path, monkeypatch):
    code, _, err = run_cli("recon", closed_port_url(), "--n-features", "3", capsys=capsys)
    assert code == 3 and "cannot reach http://127.0.0.1:" in err and "Traceback" not in err
    auth = setup["server"].url("auth")
    code, _, err = run_cli("recon", auth, "--n-features", "600", capsys=capsys)
    assert code == 3 and "401 Unauthorized" in err and "--api-key-env" in err
    monkeypatch.setenv("MS_KEY", API_KEY)
    code, out, err = run_cli("recon", auth, "--n-features", "600", "--api-key-env", "MS_KEY", "--json", capsys=capsys)
    assert code == 0, err
    assert json.loads(out)["mode"] == "probabilities"


def test_retry_after_from_a_rate_limited_server(setup):
    # The server allows 2 requests per second, then answers 429 with Retry-After: 1.
    import time

    # backoff=30 s: finishing well under 30 s shows the client waited the server's Retry-After (1 s) instead.
    target = HttpTarget(setup["server"].url("full", limit=2), n_classes=100, batch_size=1, backoff=30.0, timeout=120)
    start = time.monotonic()
    with target:
        exposure = recon(target, setup["X"][:2], repeats=1, burst=1)
    assert 0.9 < time.monotonic() - start < 20.0
    assert exposure.rate_limited and exposure.retry_after == 1.0
    assert target.rate_limit_events[0] == {"status": 429, "retry_after": 1.0}
    assert target.queries_spent == 3 and target.requests_sent == 3 + len(target.rate_limit_events)


def test_bad_record_files_exit_2(setup, capsys, tmp_path):
    f = setup["folder"]
    url = setup["server"].url("full")
    base = ["attack", "--target", url, "--shadow-data", str(f / "public.csv"), "--out", str(tmp_path)]
    code, _, err = run_cli(*base, "--records", str(f / "people.csv"), "--label-column", "klass", capsys=capsys)
    assert code == 2 and "no label column 'klass'" in err
    code, _, err = run_cli(*base, "--records", str(tmp_path / "nope.csv"), capsys=capsys)
    assert code == 2 and "does not exist" in err
    pd.DataFrame({"a": ["x", "y"], "label": [0, 1]}).to_csv(tmp_path / "text.csv", index=False)
    code, _, err = run_cli(*base, "--records", str(tmp_path / "text.csv"), capsys=capsys)
    assert code == 2 and "not numeric: ['a']" in err
    code, _, err = run_cli(*base, "--records", str(f / "people.csv"), "--fpr", "2", capsys=capsys)
    assert code == 2 and "--fpr must be in (0, 1)" in err
