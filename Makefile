# kubetune: the two commands a fresh machine needs.
#   make demo   install the trainer and fine-tune examples/tiny.yaml locally on CPU
#   make test   install what the tests need and run lint, types, contracts and every test tier
# The everyday loop: make check (lint, types, contracts, the unit tier; ~1 min warm). One area:
# make test-trainer | test-cluster | test-e2e. Tiers: tests/support/tiers.py, docs/development.md.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
# gguf: llama-cpp-python, built from its sdist the first time (~16 min on 2 cores; cached by uv).
TEST_EXTRAS ?= dev,operator,trainer,gguf,api
DEMO_EXTRAS ?= trainer

# Python writes bytecode: every test run starts a few hundred Python processes (torchrun's
# workers, prepare, the converters, the operator, the process node's pods), and each one that
# imports torch, transformers, trl and deepspeed compiles about 2,000 modules again when it may
# not write them (18 s of CPU against 7 s from cached bytecode, measured on 2 cores). Some
# environments set PYTHONDONTWRITEBYTECODE; make's recipes run without it.
unexport PYTHONDONTWRITEBYTECODE

# Extra pytest arguments for every target.
PYTEST_ARGS ?=

.PHONY: demo test prerequisites check test-trainer test-cluster test-e2e lint generate screenshot bench cold-check clean-venvs

demo:
	@venv=$$(hack/venv.sh $(DEMO_EXTRAS)); \
	"$$venv/bin/kubetune" run examples/tiny.yaml --output runs/tiny

# Every tier, fastest first: `check` before anything is built, so a unit failure shows in a
# minute and before any cluster starts; then the other tiers in one pytest run, with the kind
# and images tiers beside it (hack/test-tiers.sh).
test: prerequisites check
	@hack/llama-cpp.sh >/dev/null  # llama.cpp's converter, for the GGUF export tests
	@hack/chromium.sh >/dev/null  # Debian's Chromium, for the report's browser test
	@# The local control plane's binaries (cold: ~13 min), outside any test's timeout.
	@hack/cluster/build-binaries.sh >/dev/null
	@# Kueue's manager, for tests/cluster/test_kueue.py (cold: ~7 CPU-min, cached by version).
	@hack/cluster/build-binaries.sh kueue >/dev/null
	@# The object-storage bench's native client, for tests/bench/test_object_storage_bench.py (cold: ~30 s).
	@hack/cluster/build-binaries.sh s3-native >/dev/null
	@venv=$$(KUBETUNE_SYNC=exact hack/venv.sh $(TEST_EXTRAS)); \
	PATH="$$venv/bin:$$PATH" hack/test-tiers.sh $(PYTEST_ARGS)

prerequisites:
	@hack/cluster/build-binaries.sh --check-prerequisites
	@command -v c++ >/dev/null || { echo "make test needs a C++ compiler to build llama.cpp (GGUF tests): apt-get install g++" >&2; exit 1; }

# Lint, types, import contracts and the unit tier: no cluster (≤ 2 min warm). The trainer extra
# is installed for mypy, which checks the trainer against torch's, transformers', TRL's and
# PEFT's own types; the unit tier imports none of them.
check:
	@venv=$$(hack/venv.sh dev,operator,report,api,trainer); \
	PATH="$$venv/bin:$$PATH" $(MAKE) --no-print-directory lint && \
	PATH="$$venv/bin:$$PATH" pytest -m unit $(PYTEST_ARGS)

test-trainer:
	@venv=$$(hack/venv.sh $(TEST_EXTRAS)); PATH="$$venv/bin:$$PATH" pytest -m "trainer or bench" $(PYTEST_ARGS)

test-cluster:
	@venv=$$(hack/venv.sh $(TEST_EXTRAS)); PATH="$$venv/bin:$$PATH" pytest -m "cluster" $(PYTEST_ARGS)

test-e2e:
	@venv=$$(hack/venv.sh $(TEST_EXTRAS)); PATH="$$venv/bin:$$PATH" pytest -m "e2e or faults" $(PYTEST_ARGS)

lint:
	ruff check .
	ruff format --check .
	mypy
	lint-imports

# Regenerate every generated file (the CRDs, the chart's values schema, install.yaml, golden
# files); tests fail when they are stale. `make screenshot` retakes the README's picture of
# report.html (a tiny run, opened in Chromium).
generate:
	@venv=$$(hack/venv.sh $(TEST_EXTRAS)); \
	"$$venv/bin/python" hack/corev1-schemas.py; \
	"$$venv/bin/kubetune" crd > manifests/crd/finetunejobs.kubetune.io.yaml; \
	"$$venv/bin/kubetune" crd --helm > charts/kubetune/templates/crds/finetunejobs.yaml; \
	"$$venv/bin/python" hack/values-schema.py > charts/kubetune/values.schema.json; \
	"$$venv/bin/python" hack/reporter-access.py > charts/kubetune/templates/reporter-access.yaml; \
	"$$venv/bin/python" hack/render-install.py > manifests/install.yaml; \
	KUBETUNE_UPDATE_GOLDEN=1 "$$venv/bin/pytest" -q tests/render/test_golden.py

screenshot:
	@hack/chromium.sh >/dev/null
	@venv=$$(hack/venv.sh $(TEST_EXTRAS)); \
	KUBETUNE_UPDATE_SCREENSHOT=1 "$$venv/bin/pytest" -q tests/trainer/test_report_browser.py -k draws_every_chart

# Benchmarks print ratios against baselines measured in the same run (docs/benchmarks.md).
bench:
	@venv=$$(hack/venv.sh $(TEST_EXTRAS)); \
	for b in packing_efficiency preprocess_throughput train_throughput dpo_throughput grpo_throughput operator_burst openai_api_latency object_storage gpu/run; do \
	  "$$venv/bin/python" bench/$$b.py; done; \
	"$$venv/bin/python" bench/operator_burst.py --over-time 20 --no-baseline --soak 30 10000  # ~1 h here

# The install steps that CI proves from an empty cache on every run (hack/cold-check.sh).
cold-check:
	@hack/cold-check.sh

clean-venvs:
	rm -rf .venv
