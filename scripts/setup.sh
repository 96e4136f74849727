#!/usr/bin/env bash
# Set up memberscope on a fresh machine, then run the demo or the tests.
#   bash scripts/setup.sh demo    # .venv + install + `memberscope demo`
#   bash scripts/setup.sh test    # .venv + install + mypy (pyproject's [tool.mypy]) + the test suite
# Idempotent: re-running reuses the .venv and skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-demo}"

# apt_install PACKAGE PATH WHY: install a Debian package unless PATH exists (root or sudo only).
apt_updated=""
apt_install() {
  local package="$1" present="$2" why="$3"
  [ -e "$present" ] && return 0
  command -v apt-get >/dev/null 2>&1 || return 0
  local sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "note: not root; install $package yourself ($why)" >&2; return 0; }
    sudo_cmd="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$apt_updated" ]; then
    $sudo_cmd apt-get update -qq >/dev/null 2>&1 || true
    apt_updated=1
  fi
  $sudo_cmd apt-get install -y -qq "$package" >/dev/null 2>&1 \
    || echo "note: could not install $package; $why will be unavailable" >&2
}

# Debian packages the data sets, tests and benchmarks use.
apt_install dataset-fashion-mnist /usr/share/datasets/fashion-mnist "the fashion-mnist dataset"
apt_install chromium /usr/bin/chromium "the HTML report browser test"
apt_install tmux /usr/bin/tmux "the 80-column progress test"
apt_install redis-server /usr/bin/redis-server "the multi-worker gateway test"
apt_install wrk /usr/bin/wrk "the gateway latency benchmark"
apt_install fortunes /usr/share/games/fortunes "the language-model demo corpus"
apt_install r-cran-mlbench /usr/lib/R/site-library/mlbench/data "the clinical tables pima-diabetes and breast-cancer-original"

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch is pinned to the CPU build in constraints.txt (an unpinned torch pulls a multi-GB CUDA build).
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[all,dev]' 2>&1 \
  | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import memberscope, torch" >/dev/null

case "$what" in
  demo) exec .venv/bin/memberscope demo --out runs/demo ;;
  test) shift || true; .venv/bin/mypy; exec .venv/bin/python -m pytest -q "$@" ;;
  install) ;;
  *) echo "usage: bash scripts/setup.sh [demo|test|install]" >&2; exit 2 ;;
esac
