#!/usr/bin/env bash
# Set up memberscope on a fresh machine, then run the demo or the tests.
#   bash scripts/setup.sh demo    # .venv + install + `memberscope demo`
#   bash scripts/setup.sh test    # .venv + install + the test suite
# Idempotent: re-running reuses the .venv and skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-demo}"

# Debian data packages: Fashion-MNIST IDX files (tests and benchmarks use them when present).
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo_cmd="sudo"
  if { [ "$(id -u)" -eq 0 ] || [ -n "$sudo_cmd" ]; }; then
    export DEBIAN_FRONTEND=noninteractive
    $sudo_cmd apt-get update -qq >/dev/null 2>&1 || true
    $sudo_cmd apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
      || echo "note: could not install dataset-fashion-mnist; the fashion-mnist dataset will be unavailable" >&2
  fi
fi

# Debian's headless Chromium: the HTML report test loads report.html in it (skipped when absent).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo_cmd="sudo"
  if { [ "$(id -u)" -eq 0 ] || [ -n "$sudo_cmd" ]; }; then
    export DEBIAN_FRONTEND=noninteractive
    $sudo_cmd apt-get update -qq >/dev/null 2>&1 || true
    $sudo_cmd apt-get install -y -qq chromium >/dev/null 2>&1 \
      || echo "note: could not install chromium; the HTML report browser test will be skipped" >&2
  fi
fi

# Debian's fortunes: the public text corpus the self-contained language-model setting pre-trains on.
if [ ! -d /usr/share/games/fortunes ] && command -v apt-get >/dev/null 2>&1; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo_cmd="sudo"
  if { [ "$(id -u)" -eq 0 ] || [ -n "$sudo_cmd" ]; }; then
    export DEBIAN_FRONTEND=noninteractive
    $sudo_cmd apt-get update -qq >/dev/null 2>&1 || true
    $sudo_cmd apt-get install -y -qq fortunes >/dev/null 2>&1 \
      || echo "note: could not install fortunes; the llm demo setting will be unavailable" >&2
  fi
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch is pinned to the CPU build in constraints.txt (an unpinned torch pulls a multi-GB CUDA build).
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,parquet,llm]' 2>&1 \
  | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import memberscope, torch" >/dev/null

case "$what" in
  demo) exec .venv/bin/memberscope demo --out runs/demo ;;
  test) shift || true; exec .venv/bin/python -m pytest -q "$@" ;;
  install) ;;
  *) echo "usage: bash scripts/setup.sh [demo|test|install]" >&2; exit 2 ;;
esac
