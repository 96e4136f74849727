"""A report as a browser shows it: headless Chromium loads ``report.html`` at a given width, says what
overflows the page and whether every figure decoded, and takes screenshots (the README's come from here).

Needs a Chromium binary (Debian: ``apt-get install chromium``); nothing is downloaded.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from memberscope.exceptions import MissingDependencyError

__all__ = ["CHROMIUM_NAMES", "LayoutCheck", "check_layout", "find_chromium", "screenshot"]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")

# Run after load: the page's horizontal overflow, the elements sticking out of the viewport (those inside a
# scrolling box are fine, the box scrolls), and how many images decoded.
_PROBE = """<script>window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || (e.target && e.target.src) || e)), true);
window.addEventListener('load', () => {
  const doc = document.documentElement, width = doc.clientWidth;
  const scrolls = el => { for (let p = el.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p).overflowX; if (s === 'auto' || s === 'scroll' || s === 'hidden') return true; }
    return false; };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.id === '__layout') continue;
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > width + 1 && !scrolls(el))
      out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className ? '.' + el.className : '')
               + ' right=' + Math.round(r.right));
  }
  const imgs = Array.from(document.images);
  const probe = document.createElement('pre'); probe.id = '__layout';
  probe.textContent = 'LAYOUT ' + JSON.stringify({width: width, scroll_width: doc.scrollWidth, overflow: out,
    images: imgs.length, decoded: imgs.filter(i => i.complete && i.naturalWidth > 0).length, errors: window.__errors});
  document.body.appendChild(probe);
});</script>"""


@dataclass(frozen=True)
class LayoutCheck:
    """What Chromium saw of a report at one viewport width (CSS pixels).

    ``overflow`` lists the elements reaching past the viewport outside any scrolling box (tag, id, class,
    right edge); ``scroll_width`` > ``width`` means the whole page scrolls sideways.
    """

    width: int
    scroll_width: int
    overflow: list[str]
    images: int
    decoded: int
    errors: list[str]

    @property
    def ok(self) -> bool:
        return not self.overflow and self.scroll_width <= self.width and self.decoded == self.images and not self.errors


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) on ``PATH``, or None."""
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def _chromium(chromium: str | None) -> str:
    path = chromium or find_chromium()
    if path is None:
        raise MissingDependencyError(
            f"rendering a report in a browser needs Chromium (one of {', '.join(CHROMIUM_NAMES)} on PATH); "
            "on Debian: apt-get install chromium"
        )
    return path


def _flags(chromium: str, profile: Path, width: int, height: int) -> list[str]:
    return [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "--virtual-time-budget=10000",
    ]


def check_layout(report: str | Path, *, width: int, chromium: str | None = None, timeout: float = 120) -> LayoutCheck:
    """Load ``report`` (an HTML file) in headless Chromium ``width`` CSS pixels wide; see :class:`LayoutCheck`.

    Raises MissingDependencyError without Chromium, RuntimeError when Chromium returns no page.
    """
    report = Path(report)
    binary = _chromium(chromium)
    with tempfile.TemporaryDirectory(prefix="memberscope-browser-") as tmp:
        page = Path(tmp) / "probe.html"
        page.write_text(report.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>", 1), encoding="utf-8")
        done = subprocess.run(
            [*_flags(binary, Path(tmp) / "profile", width, 1000), "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    found = re.search(r"LAYOUT (\{.*\})", done.stdout)
    if found is None:
        raise RuntimeError(f"Chromium returned no page for {report}: {done.stderr[-1000:]}")
    data = json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    return LayoutCheck(**data)


def screenshot(
    report: str | Path,
    out: str | Path,
    *,
    width: int = 1280,
    height: int = 1600,
    chromium: str | None = None,
    timeout: float = 120,
) -> Path:
    """Write a PNG of the top ``height`` pixels of ``report`` at ``width`` CSS pixels to ``out``."""
    report, out = Path(report), Path(out)
    binary = _chromium(chromium)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="memberscope-browser-") as tmp:
        subprocess.run(
            [*_flags(binary, Path(tmp) / "profile", width, height), f"--screenshot={out.resolve()}", report.as_uri()],
            capture_output=True,
            timeout=timeout,
        )
    if not out.exists() or out.stat().st_size == 0:
        raise RuntimeError(f"Chromium wrote no screenshot of {report}")
    return out
