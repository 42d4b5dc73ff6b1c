# No-Docker runtime: a real ComfyUI on this host (install + supervised serve) and its end-to-end tests.
COMFYUI_DIR ?= $(or $(WANX_COMFYUI_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/wanx/comfyui)

.PHONY: comfyui-local e2e

comfyui-local: $(STAMP) ## install the pinned ComfyUI on CPU into COMFYUI_DIR for the e2e tests (WANX_GIT_SOURCE_*/WANX_GIT_MIRROR)
	WANX=$(WANX) scripts/install-comfyui.sh --cpu --prefix "$(COMFYUI_DIR)" --models-dir "$(COMFYUI_DIR)/models"

e2e: $(STAMP) ## end-to-end tests on the real ComfyUI in COMFYUI_DIR (CPU, about a minute)
	WANX_COMFYUI_DIR="$(COMFYUI_DIR)" $(PY) -m pytest tests/e2e -m e2e -v -s

BENCH_TARGETS += bench-serve-ready
.PHONY: bench-serve-ready
bench-serve-ready: $(STAMP)
	WANX_COMFYUI_DIR="$(COMFYUI_DIR)" $(PY) bench/bench_serve_ready.py --runs 2
