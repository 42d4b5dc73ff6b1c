#!/usr/bin/env bash
# Image entry point: scripts/entrypoint.sh [all|comfyui|gateway|fetch] [extra args].
#   all      ComfyUI and the gateway, supervised in one container (default)
#   comfyui  ComfyUI only, on 127.0.0.1 (the gateway runs in a container sharing its network namespace)
#   gateway  the gateway only, in front of http://127.0.0.1:8188
#   fetch    download and verify the models of WANX_WORKFLOWS (comma list; default all), then exit
# Env: WANX_PREFIX (ComfyUI install, default /opt/wanx), WANX_MODELS_DIR (/models), WANX_DATA_DIR (/data),
#      WANX_CPU=1 (ComfyUI --cpu), WANX_GPUS=0,1 (one ComfyUI per GPU), WANX_PORT (gateway port, 8080).
set -euo pipefail

role="${1:-all}"
if [ $# -gt 0 ]; then shift; fi
wanx="${WANX:-wanx}"
data="${WANX_DATA_DIR:-/data}"
export WANX_PREFIX="${WANX_PREFIX:-/opt/wanx}" WANX_MODELS_DIR="${WANX_MODELS_DIR:-/models}" WANX_DATA_DIR="$data"

serve=("$wanx" serve --prefix "$WANX_PREFIX" --models-dir "$WANX_MODELS_DIR" --data-dir "$data"
  --port "${WANX_PORT:-8080}" --no-workflows)
if [ "${WANX_CPU:-0}" = "1" ]; then serve+=(--cpu); fi
if [ -n "${WANX_GPUS:-}" ]; then serve+=(--gpus "$WANX_GPUS"); fi

install_workflows() {
  mkdir -p "$data/user"
  local from=()
  if [ -d "$WANX_PREFIX/workflows" ]; then from=(--workflows-dir "$WANX_PREFIX/workflows"); fi
  "$wanx" workflows install --user-dir "$data/user" "${from[@]}"
}

case "$role" in
  all) install_workflows; exec "${serve[@]}" "$@" ;;
  comfyui) install_workflows; exec "${serve[@]}" --only comfyui "$@" ;;
  gateway) exec "${serve[@]}" --only gateway "$@" ;;
  fetch)
    workflows=()
    IFS=',' read -ra names <<< "${WANX_WORKFLOWS:-}"
    for name in "${names[@]}"; do
      name="${name// /}"
      if [ -n "$name" ]; then workflows+=(--workflow "$name"); fi
    done
    exec "$wanx" models fetch "${workflows[@]}" "$@" ;;
  *) echo "entrypoint: unknown role '$role' (expected all, comfyui, gateway or fetch)" >&2; exit 2 ;;
esac
