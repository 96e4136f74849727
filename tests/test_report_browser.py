"""Every kind of report in headless Chromium at 1280 and 800 px: nothing overflows the page, every figure loads."""

import json

import pytest
from report_fixtures import REDTEAM, defenses_payload, llm_payload, metrics, write_audit_run

from memberscope.report.browser import check_layout, find_chromium, screenshot
from memberscope.report.html import write_html

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="needs a Chromium on PATH (Debian: chromium)")


def _audit(path):
    return write_audit_run(path, claimed_epsilon=0.5, defenses=defenses_payload(dp_shift=3.0)), 3


def _llm(path):
    path.mkdir()
    (path / "results.json").write_text(json.dumps(llm_payload()))
    return path, 0


def _redteam(path):
    path.mkdir()
    (path / "results.json").write_text(json.dumps({**REDTEAM, "attacks": {"confidence": metrics(1.0)}}))
    return path, 0


KINDS = {"audit with defenses": _audit, "llm": _llm, "red team": _redteam}


@pytest.fixture(scope="module", params=list(KINDS))
def report(request, tmp_path_factory):
    run, n_images = KINDS[request.param](tmp_path_factory.mktemp("run") / "run")
    return write_html(run), n_images


@pytest.mark.parametrize("width", [1280, 800])
def test_report_fits_the_window_and_every_figure_loads(report, width):
    path, n_images = report
    check = check_layout(path, width=width)
    assert check.width == width
    assert check.overflow == [] and check.scroll_width <= width, check
    assert check.images >= n_images and check.decoded == check.images, check
    assert check.errors == []
    assert check.ok


def test_the_check_sees_an_overflowing_element_and_a_broken_image(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        "<!doctype html><html><body><div id='wide' style='width:1500px'>x</div>"
        "<div style='overflow-x:auto'><table style='width:3000px'><tr><td>scrolls</td></tr></table></div>"
        "<img src='missing.png'></body></html>"
    )
    check = check_layout(page, width=800)
    assert [o.split(" ")[0] for o in check.overflow] == ["div#wide"]  # the scrolling box's table is fine
    assert check.scroll_width > 800 and check.images == 1 and check.decoded == 0
    assert not check.ok


def test_screenshot_is_a_png_of_the_requested_width(tmp_path):
    path = write_html(_llm(tmp_path / "run")[0])
    out = screenshot(path, tmp_path / "shot.png", width=800, height=600)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(data[16:20], "big") == 800 and int.from_bytes(data[20:24], "big") == 600
