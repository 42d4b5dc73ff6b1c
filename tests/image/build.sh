#!/usr/bin/env bash
# Build the CI (CPU) variant of the Dockerfile with podman, from a Debian 12 base made here with debootstrap
# (no registry needed), with the local CPU torch wheel instead of the CUDA build.
#   tests/image/build.sh [TAG]          (default tag localhost/wanx-ci:latest)
# Env: IMAGE_TEST_BASE        base image tag (made once, then reused; default localhost/wanx-ci-base:bookworm)
#      DEBIAN_MIRROR       for debootstrap (default http://deb.debian.org/debian)
#      WHEELS_DIR          folder with the torch wheel (default: pip config get global.find-links)
#      IMAGE_TEST_SOURCES     folder of bare clones <name>.git of the four pinned repositories (as
#                          tests/e2e/prepare_sources.py makes them): ComfyUI is installed from them. Unset: the
#                          image gets the gateway only (COMFYUI=skip), since GitHub is out of reach here.
#      IMAGE_TEST_MOUNTS      extra host folders to mount read-only at the same path (e.g. git alternates' targets)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tag="${1:-localhost/wanx-ci:latest}"
base="${IMAGE_TEST_BASE:-localhost/wanx-ci-base:bookworm}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"

die() { echo "image-test: $*" >&2; exit 1; }
for tool in podman debootstrap; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install podman buildah debootstrap runc slirp4netns uidmap containernetworking-plugins catatonit"
done

seconds() { date +%s; }
start=$(seconds)
if ! podman image exists "$base"; then
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase bookworm "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
  echo "image-test: base $base made in $(( $(seconds) - start )) s"
fi

# docker format: OCI images cannot carry SHELL, and the Dockerfile's RUN steps are bash.
args=(--format docker --build-arg "BASE_IMAGE=$base" --build-arg COMFYUI_MODE=cpu --build-arg TORCH_INDEX_URL=
      --build-arg TORCH_SPEC= --build-arg SAGEATTENTION_SPEC=)
wheels="${WHEELS_DIR:-$(pip config get global.find-links 2>/dev/null || true)}"
if [ -n "$wheels" ] && [ -d "$wheels" ]; then
  args+=(--volume "$wheels:/wheels:ro" --build-arg WHEELS_DIR=/wheels)
fi
ca=/etc/ssl/certs/ca-certificates.crt
if [ -s "$ca" ]; then args+=(--secret "id=egress_ca,src=$ca"); fi
if [ -n "${IMAGE_TEST_SOURCES:-}" ]; then
  overrides=()
  for name in ComfyUI ComfyUI-WanVideoWrapper ComfyUI-KJNodes ComfyUI-VideoHelperSuite; do
    [ -d "$IMAGE_TEST_SOURCES/$name.git" ] || die "IMAGE_TEST_SOURCES=$IMAGE_TEST_SOURCES has no $name.git"
    overrides+=(--source-override "$name=$IMAGE_TEST_SOURCES/$name.git")
  done
  args+=(--volume "$IMAGE_TEST_SOURCES:$IMAGE_TEST_SOURCES:ro" --build-arg "INSTALL_ARGS=${overrides[*]}")
  for mount in ${IMAGE_TEST_MOUNTS:-}; do args+=(--volume "$mount:$mount:ro"); done
else
  args+=(--build-arg COMFYUI=skip)
fi

built=$(seconds)
podman build "${args[@]}" -t "$tag" "$root"
echo "image-test: built $tag in $(( $(seconds) - built )) s"
