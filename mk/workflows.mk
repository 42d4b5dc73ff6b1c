# Workflows: the shipped graphs are checked against the pinned node schemas and models.lock.yaml on every
# `make test`, and the UI files must match what `wanx workflows build` generates.
.PHONY: lint-workflows workflows-build

LINT_TARGETS += lint-workflows

lint-workflows: $(STAMP) ## check the shipped workflows (schema, links, models) and that the UI files are up to date
	$(WANX) workflows check
	$(WANX) workflows build --check

workflows-build: $(STAMP) ## regenerate workflows/*.json (UI format) from workflows/api/
	$(WANX) workflows build
