# kubetune: the two commands a fresh machine needs.
#   make demo   install the trainer and fine-tune examples/tiny.yaml locally on CPU
#   make test   install what the tests need and run lint, types, contracts and tests
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
TEST_EXTRAS ?= dev,operator
DEMO_EXTRAS ?= trainer

.PHONY: demo test lint unit generate golden clean-venvs

demo:
	@venv=$$(hack/venv.sh $(DEMO_EXTRAS)); \
	"$$venv/bin/kubetune" validate examples/tiny.yaml; \
	"$$venv/bin/kubetune" render examples/tiny.yaml

test:
	@venv=$$(hack/venv.sh $(TEST_EXTRAS)); \
	PATH="$$venv/bin:$$PATH" $(MAKE) --no-print-directory lint unit

lint:
	ruff check .
	ruff format --check .
	mypy
	lint-imports

unit:
	pytest

# Regenerate every generated file (the CRD, golden files); tests fail when they are stale.
generate:
	@venv=$$(hack/venv.sh $(TEST_EXTRAS)); \
	"$$venv/bin/kubetune" crd > manifests/crd/finetunejobs.kubetune.io.yaml; \
	KUBETUNE_UPDATE_GOLDEN=1 "$$venv/bin/pytest" -q tests/render/test_golden.py

clean-venvs:
	rm -rf "$${KUBETUNE_CACHE:-$$HOME/.cache/kubetune}/venvs"
