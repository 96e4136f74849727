"""A running audit, read off an 80-column tmux screen as a user sees it: an ETA once the first model is done."""

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux to read a terminal's screen")

ETA = re.compile(r"models?\b.*\d+/\d+.*ETA (\d+:\d\d:\d\d)")


def test_a_running_audit_shows_an_eta_after_the_first_model(tmp_path):
    socket = f"memberscope-test-{os.getpid()}"
    tmux = ["tmux", "-L", socket]
    command = [
        sys.executable, "-m", "memberscope.cli", "audit", "--dataset", "digits", "--model", "mlp",
        "--reference-models", "4", "--attacks", "loss", "--n-bootstrap", "10", "--no-cache", "--no-report",
        "--out", str(tmp_path / "run"), "--db", str(tmp_path / "history.db"),
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "OMP_NUM_THREADS": "1",
        "COLUMNS": "80",
        "TERM": "xterm-256color",
    }
    script = tmp_path / "run.sh"
    script.write_text(" ".join(f"'{c}'" for c in command) + f" ; echo EXIT=$? > '{tmp_path / 'rc'}'; sleep 60\n")
    subprocess.run([*tmux, "new-session", "-d", "-x", "80", "-y", "24", "bash", str(script)], env=env, check=True)
    screens = []
    try:
        deadline = time.monotonic() + 240
        found = None
        while time.monotonic() < deadline and found is None:
            screen = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True).stdout
            screens.append(screen)
            found = next((m for line in screen.splitlines() if (m := ETA.search(line))), None)
            if (tmp_path / "rc").exists() and found is None:
                break
            time.sleep(0.3)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    assert found is not None, "no ETA on the screen; last screen:\n" + (screens[-1] if screens else "")
    assert all(len(line) <= 80 for line in screens[-1].splitlines())
