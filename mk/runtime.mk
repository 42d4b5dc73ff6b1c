# The runtime on one host: the compose stack (deploy/), the image and their checks. docs/deploy.md explains.
#   make up [WORKFLOWS=vace] [CPU=1]   preflight, .env, models, image, start, wait for /readyz
#   make down | logs | status | fetch | image | image-test

WORKFLOWS ?=
CPU ?=
UP_FLAGS := $(if $(WORKFLOWS),--workflows $(WORKFLOWS)) $(if $(filter 1 yes true,$(CPU)),--cpu)
# Shell scripts shellcheck covers: every *.sh in the repo plus the CI entry point and cloud-init templates.
SHELL_SCRIPTS = .ci/run $(shell find . -path ./.venv -prune -o -path './.venv-*' -prune -o -path ./var -prune \
	-o -path ./.git -prune -o -type f \( -name '*.sh' -o -name '*.sh.tftpl' -o -name '*.sh.tpl' \) -print | sort)
YAMLLINT_CONFIG := {extends: default, rules: {line-length: {max: 120}, document-start: disable, truthy: {check-keys: false}}}

LINT_TARGETS += lint-runtime

.PHONY: up down logs status fetch image image-test lint-runtime

up: $(STAMP) ## start ComfyUI + gateway on this host (WORKFLOWS=wanx-21,vace CPU=1): preflight, models, image, /readyz
	$(WANX) up $(UP_FLAGS)

down: $(STAMP) ## stop the stack (models and data are kept)
	$(WANX) stack down $(if $(filter 1 yes true,$(CPU)),--cpu)

logs: $(STAMP) ## follow the stack's logs
	$(WANX) stack logs

status: $(STAMP) ## show the containers and whether /readyz answers
	$(WANX) stack status

fetch: $(STAMP) ## fetch the models of WORKFLOWS (default: both) into WANX_MODELS_DIR
	$(WANX) stack fetch $(if $(WORKFLOWS),--workflows $(WORKFLOWS))

image: $(STAMP) ## build the runtime image (localhost/wanx:latest), or pull WANX_IMAGE when set
	$(WANX) stack build

image-test: $(STAMP) ## build the CPU variant of the Dockerfile with podman and run the gateway in it (minutes)
	RUN_IMAGE_TEST=1 $(PY) -m pytest -p no:cacheprovider tests/image -rs

lint-runtime: $(STAMP) $(CLOUD_TOOLS_STAMP)
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/shellcheck $(SHELL_SCRIPTS)
	$(VENV)/bin/yamllint -s -d '$(YAMLLINT_CONFIG)' deploy/compose.yaml deploy/compose.cpu.yaml deploy/compose.ci.yaml
	BC_SKIP_MAPPING=TRUE $(CHECKOV) -f Dockerfile --framework dockerfile --skip-download --compact --quiet
	@# Optional (needs podman): used when installed, e.g. pip install podman-compose==1.6.0.
	@if command -v podman-compose >/dev/null; then \
	  WANX_TOKEN=lint podman-compose -f deploy/compose.yaml -f deploy/compose.cpu.yaml config >/dev/null \
	  && echo "lint-runtime: podman-compose config accepts deploy/compose.yaml + compose.cpu.yaml"; \
	else echo "lint-runtime: podman-compose not installed, compose config check skipped"; fi
