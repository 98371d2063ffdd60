# resilient-templates: everything a fresh machine needs starts here.
#
#   make generate          lower stages/ to Argo Workflows v4 manifests in generated/
#   make test              run the whole test suite
#   make check-generated   fail when generated/ is stale or invalid (CI runs it)
#   make bench             speed/size report (ratios against a baseline, not assertions)
#   make eval              failure-analysis accuracy on the labelled corpus
#
# The first target that needs Python bootstraps .venv/ (uv if it can, pip otherwise).

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RT     := $(PY) -m resilient_templates
CONFIG := stages/resilient.toml
export ARGO_SCHEMA ?= $(abspath $(wildcard ../shared/argo/schema.json))

.PHONY: all generate check-generated test bench eval venv clean

all: generate test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	    echo "venv without ensurepip (Debian: python3-venv missing): using virtualenv"; \
	    rm -rf $(VENV); $(PYTHON) -m pip install -q --user virtualenv && $(PYTHON) -m virtualenv -q $(VENV); }
	@$(PY) -m pip install -q uv >/dev/null 2>&1 || true
	@if $(VENV)/bin/uv --version >/dev/null 2>&1; then \
	    $(VENV)/bin/uv pip install -q --python $(PY) -e '.[dev]'; \
	else \
	    $(PY) -m pip install -q -e '.[dev]'; \
	fi
	@touch $(STAMP)

venv: $(STAMP)

generate: $(STAMP)
	$(RT) generate --config $(CONFIG) --out generated

check-generated: $(STAMP)
	$(RT) generate --config $(CONFIG) --out generated --check
	$(RT) validate generated $(if $(filter 1,$(RT_REQUIRE_SCHEMA)),--require-schema,)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) tests/bench/run.py

eval: $(STAMP)
	$(PY) tests/eval/evaluate.py --title "first corpus"
	$(PY) tests/eval/evaluate.py --corpus tests/eval/holdout.jsonl --title "held-out"

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build src/*.egg-info
