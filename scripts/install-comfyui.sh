#!/usr/bin/env bash
# The one ComfyUI install: run by the Dockerfile and by hosts without Docker. It only checks the tools it needs
# and hands over to `wanx install` (src/wanx/install.py), passing this checkout's lock and constraints files.
#   scripts/install-comfyui.sh [--cpu] [--prefix DIR] [--models-dir DIR] [--source-override NAME=URL] ...
# Env: WANX (the wanx command; default: wanx on PATH), WANX_GIT_SOURCE_<NAME>, WANX_GIT_MIRROR,
#      WANX_TORCH_SPEC / WANX_TORCH_INDEX_URL (GPU mode: torch to install first; empty keeps the image's torch).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
wanx="${WANX:-wanx}"

die() { echo "install-comfyui: $*" >&2; exit 1; }

command -v git >/dev/null || die "git is not installed (apt-get install git)"
command -v "${WANX_PYTHON:-python3}" >/dev/null || die "${WANX_PYTHON:-python3} is not installed (apt-get install python3 python3-venv)"
command -v "$wanx" >/dev/null || die "the wanx command ($wanx) is not on PATH: install the package first (pip install $here) or set WANX"

mode=gpu
for arg in "$@"; do if [ "$arg" = "--cpu" ]; then mode=cpu; fi; done
extra=()
if [ -d "$here/workflows" ]; then extra+=(--workflows "$here/workflows"); fi

exec "$wanx" install \
  --lock "$here/comfyui.lock.yaml" \
  --constraints "$here/constraints/comfyui-$mode.txt" \
  --python "${WANX_PYTHON:-python3}" \
  "${extra[@]}" "$@"
