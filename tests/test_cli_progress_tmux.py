"""Running commands read off an 80-column tmux screen as a user sees it: an ETA once the first model is done."""

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux to read a terminal's screen")

ETA = re.compile(r"models?\b.*\d+/\d+.*ETA (\d+:\d\d:\d\d)")
DEFENSE_ETA = re.compile(r"defense \d of \d: \S+.*\d+/\d+.*ETA (\d+:\d\d:\d\d)")


def _read_screen_until(command: list[str], pattern: re.Pattern, tmp_path, *, timeout: float = 240):
    """Run ``memberscope COMMAND`` in an 80×24 tmux window; ``(match, screens)``: the first line matching ``pattern``
    (None if the command ended or time ran out first) and every screen read."""
    socket = f"memberscope-test-{os.getpid()}"
    tmux = ["tmux", "-L", socket]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "OMP_NUM_THREADS": "1",
        "COLUMNS": "80",
        "TERM": "xterm-256color",
    }
    script = tmp_path / "run.sh"
    full = [sys.executable, "-m", "memberscope.cli", *command]
    script.write_text(" ".join(f"'{c}'" for c in full) + f" ; echo EXIT=$? > '{tmp_path / 'rc'}'; sleep 60\n")
    subprocess.run([*tmux, "new-session", "-d", "-x", "80", "-y", "24", "bash", str(script)], env=env, check=True)
    screens = []
    found = None
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and found is None:
            screen = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True).stdout
            screens.append(screen)
            found = next((m for line in screen.splitlines() if (m := pattern.search(line))), None)
            if (tmp_path / "rc").exists() and found is None:
                break
            time.sleep(0.3)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    return found, screens


def test_a_running_audit_shows_an_eta_after_the_first_model(tmp_path):
    command = [
        "audit", "--dataset", "digits", "--model", "mlp", "--reference-models", "4", "--attacks", "loss",
        "--n-bootstrap", "10", "--no-cache", "--no-report", "--out", str(tmp_path / "run"),
        "--db", str(tmp_path / "history.db"),
    ]  # fmt: skip
    found, screens = _read_screen_until(command, ETA, tmp_path)
    assert found is not None, "no ETA on the screen; last screen:\n" + (screens[-1] if screens else "")
    assert all(len(line) <= 80 for line in screens[-1].splitlines())


def test_a_running_defend_shows_one_line_over_every_defense_with_an_eta(tmp_path):
    """``defense k of N: NAME`` with an ETA for the whole run once its first model is trained."""
    command = [
        "defend", "--dataset", "digits", "--model", "mlp", "--defenses", "none,l2:1e-3,round:2",
        "--reference-models", "2", "--attacks", "loss", "--n-bootstrap", "10", "--no-cache", "--no-report",
        "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    found, screens = _read_screen_until(command, DEFENSE_ETA, tmp_path)
    assert found is not None, "no overall ETA on the screen; last screen:\n" + (screens[-1] if screens else "")
    assert all(len(line) <= 80 for screen in screens for line in screen.splitlines())
