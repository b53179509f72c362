# kubetune: the two commands a fresh machine needs.
#   make demo   install the trainer and fine-tune examples/tiny.yaml locally on CPU
#   make test   install what the tests need and run lint, types, contracts and tests
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
# gguf: llama-cpp-python, built from its sdist the first time (~16 min on 2 cores; cached by uv).
TEST_EXTRAS ?= dev,operator,trainer,gguf
DEMO_EXTRAS ?= trainer

.PHONY: demo test lint unit generate screenshot bench cold-check clean-venvs

demo:
	@venv=$$(hack/venv.sh $(DEMO_EXTRAS)); \
	"$$venv/bin/kubetune" run examples/tiny.yaml --output runs/tiny

test:
	@hack/cluster/build-binaries.sh --check-prerequisites
	@command -v c++ >/dev/null || { echo "make test needs a C++ compiler to build llama.cpp (GGUF tests): apt-get install g++" >&2; exit 1; }
	@hack/llama-cpp.sh >/dev/null  # llama.cpp's converter, for the GGUF export tests
	@hack/chromium.sh >/dev/null  # Debian's Chromium, for the report's browser test
	@venv=$$(KUBETUNE_SYNC=exact hack/venv.sh $(TEST_EXTRAS)); \
	PATH="$$venv/bin:$$PATH" $(MAKE) --no-print-directory lint unit

lint:
	ruff check .
	ruff format --check .
	mypy
	lint-imports

unit:
	pytest

# Regenerate every generated file (the CRDs, the chart's values schema, install.yaml, golden
# files); tests fail when they are stale. `make screenshot` retakes the README's picture of
# report.html (a tiny run, opened in Chromium).
generate:
	@venv=$$(hack/venv.sh $(TEST_EXTRAS)); \
	"$$venv/bin/python" hack/corev1-schemas.py; \
	"$$venv/bin/kubetune" crd > manifests/crd/finetunejobs.kubetune.io.yaml; \
	"$$venv/bin/kubetune" crd --helm > charts/kubetune/templates/crds/finetunejobs.yaml; \
	"$$venv/bin/python" hack/values-schema.py > charts/kubetune/values.schema.json; \
	"$$venv/bin/python" hack/render-install.py > manifests/install.yaml; \
	KUBETUNE_UPDATE_GOLDEN=1 "$$venv/bin/pytest" -q tests/render/test_golden.py

screenshot:
	@hack/chromium.sh >/dev/null
	@venv=$$(hack/venv.sh $(TEST_EXTRAS)); \
	KUBETUNE_UPDATE_SCREENSHOT=1 "$$venv/bin/pytest" -q tests/trainer/test_report_browser.py -k draws_every_chart

# Benchmarks print ratios against baselines measured in the same run (docs/benchmarks.md).
bench:
	@venv=$$(hack/venv.sh $(TEST_EXTRAS)); \
	for b in packing_efficiency preprocess_throughput train_throughput dpo_throughput operator_burst gpu/run; do \
	  "$$venv/bin/python" bench/$$b.py; done

# The install steps that CI proves from an empty cache on every run (hack/cold-check.sh).
cold-check:
	@hack/cold-check.sh

clean-venvs:
	rm -rf .venv
