# syntax=docker/dockerfile:1
# The wanx runtime image: ComfyUI and its three node packs at the commits in comfyui.lock.yaml, a CUDA 12 torch,
# sageattention, and the wanx gateway in front. One container runs both (scripts/entrypoint.sh all): ComfyUI on
# 127.0.0.1:8188, the gateway on 0.0.0.0:8080, the only port. Code lives under /opt, owned by root and read-only
# for the `wanx` user; models, input, output and user data live on the /models and /data volumes.
#
#   GPU host:   docker build -t wanx .        (`make image`; `make up` builds it for you)
#   CI (CPU):   make image-test               (this file with other ARGs: tests/image/build.sh)
#   SageAttention 2 from source:
#     docker build --build-arg SAGEATTENTION_REF=<git ref of thu-ml/SageAttention> \
#       --build-arg SAGE_BUILDER_IMAGE=nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04 -t wanx .

# CUDA 12.8 runtime on Ubuntu 24.04 (Python 3.12). CUDA 12 runs on drivers 525+ (minor-version compatibility);
# Alibaba Cloud's GPU images and ACS ship 535/550. The CI variant passes a debootstrapped Debian 12 instead.
ARG BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
# Only used when SAGEATTENTION_REF is set; building SageAttention 2 needs nvcc, so pass a -devel image then.
ARG SAGE_BUILDER_IMAGE=${BASE_IMAGE}

# ---------------------------------------------------------------- base: the OS packages every stage shares
# checkov:skip=CKV_DOCKER_7: the tag comes from ARG BASE_IMAGE (a pinned CUDA tag), which checkov cannot resolve
FROM ${BASE_IMAGE} AS base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git python3 python3-venv libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*
# The OS release is pinned by BASE_IMAGE; package versions differ between the GPU (Ubuntu) and CI (Debian) bases,
# so apt versions are not pinned (DL3008). Python packages are pinned exactly (pyproject.toml, constraints/).

# ---------------------------------------------------------------- wanx: the wanx package in its own venv
FROM base AS wanx
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# egress_ca: optional build secret with a CA bundle, for build hosts whose egress intercepts TLS (CI); absent on a
# normal GPU host, where pip uses the system bundle.
RUN --mount=type=secret,id=egress_ca \
    if [ -s /run/secrets/egress_ca ]; then export PIP_CERT=/run/secrets/egress_ca; fi \
 && python3 -m venv /opt/wanx/venv \
 && /opt/wanx/venv/bin/pip install --no-cache-dir /src

# ---------------------------------------------------------------- sage: SageAttention 2 wheel (off by default)
FROM ${SAGE_BUILDER_IMAGE} AS sage
ARG SAGEATTENTION_REF=""
ARG TORCH_SPEC="torch==2.8.0 torchvision==0.23.0 torchaudio==2.8.0"
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG TORCH_CUDA_ARCH_LIST="8.0;8.6;8.9;9.0"
# After the ARGs: hadolint 2.15 forgets SHELL at every ARG or ENV.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN --mount=type=secret,id=egress_ca \
    mkdir -p /wheels \
 && if [ -z "${SAGEATTENTION_REF}" ]; then exit 0; fi \
 && if ! command -v nvcc >/dev/null; then \
      echo "SAGEATTENTION_REF=${SAGEATTENTION_REF} needs nvcc: pass --build-arg SAGE_BUILDER_IMAGE=<a CUDA 12 -devel image>" >&2; \
      exit 1; \
    fi \
 && if [ -s /run/secrets/egress_ca ]; then export PIP_CERT=/run/secrets/egress_ca; fi \
 && apt-get update \
 && apt-get install -y --no-install-recommends build-essential git python3-dev python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/build \
 && read -r -a torch_spec <<<"${TORCH_SPEC}" \
 && /opt/build/bin/pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "${torch_spec[@]}" \
 && /opt/build/bin/pip install --no-cache-dir setuptools wheel ninja packaging \
 && TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST}" MAX_JOBS=4 /opt/build/bin/pip wheel --no-cache-dir \
      --no-build-isolation --no-deps --wheel-dir /wheels \
      "git+https://github.com/thu-ml/SageAttention.git@${SAGEATTENTION_REF}"

# ---------------------------------------------------------------- runtime: what ships
FROM base AS runtime
# gpu: TORCH_SPEC from TORCH_INDEX_URL (a cu12x index: PyPI's default builds are CUDA 13 and need driver 580+).
# cpu: the CI variant; torch comes from the wheel folder mounted at WHEELS_DIR (tests/image/build.sh).
ARG COMFYUI_MODE=gpu
ARG TORCH_SPEC="torch==2.8.0 torchvision==0.23.0 torchaudio==2.8.0"
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG SAGEATTENTION_SPEC="sageattention==1.0.6"
ARG WHEELS_DIR=""
# install: run scripts/install-comfyui.sh; skip: gateway-only image (CI without local clones of the pinned repos).
ARG COMFYUI=install
# Extra arguments for the install script, e.g. --source-override COMFYUI=/src/ComfyUI.git on hosts without GitHub.
ARG INSTALL_ARGS=""

# The runtime user is uid 1000, numeric in USER so Kubernetes can verify runAsNonRoot. Ubuntu 24.04 images ship a
# user `ubuntu` with that uid; it goes.
RUN if id -u ubuntu >/dev/null 2>&1; then userdel --remove ubuntu; fi \
 && groupadd --gid 1000 wanx \
 && useradd --uid 1000 --gid wanx --create-home --shell /usr/sbin/nologin wanx

COPY --from=wanx /opt/wanx/venv /opt/wanx/venv
COPY comfyui.lock.yaml models.lock.yaml /opt/wanx/
COPY constraints /opt/wanx/constraints
COPY workflows /opt/wanx/workflows
COPY scripts /opt/wanx/scripts

ENV PATH=/opt/wanx/venv/bin:${PATH} \
    WANX_PREFIX=/opt/comfyui \
    WANX_MODELS_DIR=/models \
    WANX_DATA_DIR=/data \
    HOME=/home/wanx \
    XDG_CACHE_HOME=/data/cache \
    TRITON_CACHE_DIR=/data/cache/triton \
    VHS_STRICT_PATHS=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    NVIDIA_DISABLE_REQUIRE=1
# NVIDIA_DISABLE_REQUIRE: the CUDA base image asks the toolkit for a 570+ driver (cuda>=12.8); torch's bundled CUDA 12
# libraries run on 525+ through minor-version compatibility, so the 535/550 drivers of Alibaba Cloud images work.

# Repeated after ENV: hadolint 2.15 forgets SHELL at every ARG or ENV and would lint the bash below as POSIX sh.
# The chmod (in this layer, so nothing is copied twice) makes every file the install wrote readable by the runtime
# user and writable by root only, whatever mode the installer's temp-then-rename writes left (mkstemp: 0600).
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN --mount=type=secret,id=egress_ca \
    if [ "${COMFYUI}" = skip ]; then exit 0; fi \
 && if [ -s /run/secrets/egress_ca ]; then export PIP_CERT=/run/secrets/egress_ca; fi \
 && if [ -n "${WHEELS_DIR}" ]; then export PIP_FIND_LINKS="${WHEELS_DIR}"; fi \
 && read -r -a extra <<<"${INSTALL_ARGS}" \
 && mode=() && if [ "${COMFYUI_MODE}" = cpu ]; then mode=(--cpu); fi \
 && WANX_TORCH_SPEC="${TORCH_SPEC}" WANX_TORCH_INDEX_URL="${TORCH_INDEX_URL}" \
    /opt/wanx/scripts/install-comfyui.sh --prefix /opt/comfyui --models-dir /models "${mode[@]}" "${extra[@]}" \
 && if [ -n "${SAGEATTENTION_SPEC}" ]; then \
      /opt/comfyui/venv/bin/pip install --no-cache-dir "${SAGEATTENTION_SPEC}"; \
    fi \
 && /opt/comfyui/venv/bin/python -m compileall -q /opt/comfyui/ComfyUI >/dev/null \
 && chmod -R a+rX,go-w /opt/comfyui

COPY --from=sage /wheels /opt/sage-wheels
RUN if compgen -G "/opt/sage-wheels/*.whl" >/dev/null; then \
      /opt/comfyui/venv/bin/pip install --no-cache-dir --no-deps /opt/sage-wheels/*.whl; \
    fi \
 && rm -rf /opt/sage-wheels \
 && mkdir -p /models /data/input /data/output /data/user /data/cache \
 && chown -R wanx:wanx /models /data

USER 1000:1000
WORKDIR /opt/wanx
VOLUME ["/models", "/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/opt/wanx/venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["/opt/wanx/scripts/entrypoint.sh"]
CMD ["all"]
