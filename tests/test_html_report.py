"""The HTML report: one self-contained file that loads in a browser without errors, and its advice."""

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import run_cli
from results_helpers import full_metrics

from memberscope.report.html import write_html
from memberscope.report.model import executive_summary, recommendations, slice_rows
from memberscope.results import AttackResult, Results

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from memberscope.api import run_audit
    from memberscope.config import AuditConfig

    base = tmp_path_factory.mktemp("html")
    cfg = AuditConfig(
        dataset="digits",
        model_params={"hidden": [64], "epochs": 80},
        reference_models=4,
        n_bootstrap=200,
        cache_dir=str(base / "cache"),
    )
    out = base / "run"
    run_audit(cfg, progress=False).write(out)
    return out


def test_report_is_self_contained(run_dir):
    import json

    html = write_html(run_dir).read_text()
    results = json.loads((run_dir / "results.json").read_text())
    assert executive_summary(results).replace("(", "").split(")")[0][:40] in html.replace("(", "")
    assert not re.search(r"<(script|link)\b", html) and "http://" not in html and "https://" not in html
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) == 2
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for heading in (
        "Attacks",
        "Where leakage concentrates",
        "Most vulnerable records",
        "Recommendations",
        "Threat model",
    ):
        assert f"<h2>{heading}" in html
    assert html.count("<tr><td>lira-online</td>") == 2  # attack table and threat-model table


def _load_in_chromium(report: Path, tmp_path: Path, n_images: int) -> None:
    """Load ``report`` in headless Chromium: every image decodes, no console error, a non-trivial screenshot."""
    html = report.read_text()
    probe_head = (
        "<script>window.__errors = [];"
        "window.addEventListener('error', e => window.__errors.push(String(e.message || e.target.src || e)), true);"
        "</script>"
    )
    probe_body = (
        "<pre id='probe'></pre><script>window.addEventListener('load', () => {"
        "const imgs = Array.from(document.images);"
        "const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;"
        "document.getElementById('probe').textContent = 'IMAGES ' + ok + '/' + imgs.length + "
        "' ERRORS [' + window.__errors.join('; ') + ']';});</script>"
    )
    page = tmp_path / "report_probe.html"
    page.write_text(html.replace("<head>", "<head>" + probe_head, 1).replace("</body>", probe_body + "</body>", 1))
    flags = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
    ]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert f"IMAGES {n_images}/{n_images} ERRORS []" in dom.stdout, dom.stdout[-2000:] + dom.stderr[-2000:]
    assert "Uncaught" not in dom.stderr, dom.stderr[-2000:]
    shot = tmp_path / "report.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1200,3000", report.as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 50_000


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (scripts/setup.sh)")
def test_report_embeds_the_roc_figure_the_run_just_wrote(run_dir, tmp_path):
    """A run written with its report draws the ROC once: report.html embeds roc.png's bytes; a report written
    later (``memberscope report``) draws its own."""
    shutil.copytree(run_dir, tmp_path / "run")
    roc = tmp_path / "run" / "roc.png"
    html = write_html(tmp_path / "run", roc_png=roc).read_text()
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert base64.b64decode(images[0]) == roc.read_bytes()
    redrawn = re.findall(r'<img src="data:image/png;base64,([^"]+)"', write_html(tmp_path / "run").read_text())
    assert base64.b64decode(redrawn[0])[:8] == b"\x89PNG\r\n\x1a\n" and len(redrawn) == 2


def test_report_loads_in_headless_chromium(run_dir, tmp_path):
    _load_in_chromium(write_html(run_dir), tmp_path, 2)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (scripts/setup.sh)")
def test_report_with_defense_matrix_loads_in_headless_chromium(tmp_path):
    from report_fixtures import defenses_payload, write_audit_run

    run = write_audit_run(tmp_path / "run", claimed_epsilon=0.5, defenses=defenses_payload(dp_shift=3.0))
    report = write_html(run)
    html = report.read_text()
    assert "<h2>Defenses</h2>" in html and 'class="alarm"' in html and "privacy-utility frontier" in html
    _load_in_chromium(report, tmp_path, 3)


def test_report_command_defaults_to_html(run_dir, capsys):
    (run_dir / "report.html").unlink(missing_ok=True)
    code, out, err = run_cli("report", str(run_dir), capsys=capsys)
    assert code == 0, err
    assert (run_dir / "report.html").stat().st_size > 20_000 and "report.html" in out


def test_report_without_scores_exits_2(run_dir, tmp_path, capsys):
    shutil.copy(run_dir / "results.json", tmp_path / "results.json")
    code, _, err = run_cli("report", str(tmp_path), capsys=capsys)
    assert code == 2 and "cannot read scores file" in err


def _slice(tpr, ci):
    entry = full_metrics(auc=0.6, n_members=10, n_nonmembers=10, tpr_at_fpr={"0.01": tpr}, tpr_at_fpr_ci={"0.01": ci})
    return AttackResult.from_dict(entry).metrics


def test_slices_highlighted_only_when_ci_is_above_overall():
    rows = slice_rows({"a": _slice(0.2, [0.11, 0.3]), "b": _slice(0.2, [0.09, 0.3])}, "0.01", 0.1)
    assert [r.hot for r in rows] == [True, False]


def _results(tpr, ci, train, test, auc_ci=(0.6, 0.6)):
    attack = full_metrics(auc=0.6, tpr_at_fpr={"0.01": tpr}, tpr_at_fpr_ci={"0.01": ci}, auc_ci=list(auc_ci))
    return Results.from_dict(
        {"attacks": {"lira-online": attack}, "target": {"train_accuracy": train, "test_accuracy": test}}
    )


def test_recommendations_follow_the_numbers():
    leaky = recommendations(_results(0.08, [0.06, 0.1], 1.0, 0.8), hot_slices=["class 3"], headline_key="0.01")
    assert "gate" in leaky[0] and "8.0×" in leaky[0]
    assert "DP-SGD" in leaky[1] and "20.0%" in leaky[1]
    assert "class 3" in leaky[2]
    quiet = recommendations(
        _results(0.011, [0.005, 0.02], 0.9, 0.89, auc_ci=(0.45, 0.62)), hot_slices=[], headline_key="0.01"
    )
    assert len(quiet) == 1 and "is distinguishable from chance" in quiet[0]
    # the same TPR with the AUC's whole CI above 0.5: the risk is elevated, and no advice may call it chance
    auc_only = recommendations(_results(0.011, [0.005, 0.02], 0.9, 0.89), hot_slices=[], headline_key="0.01")
    assert len(auc_only) == 1 and "Leakage is measurable (risk elevated" in auc_only[0]
    assert "AUC CI [0.600, 0.600]" in auc_only[0]
