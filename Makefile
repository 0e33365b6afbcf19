# The contract: the same targets run on a laptop and in CI. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
C7N_VENV := .venv-c7n
# cfn-lint and checkov pin their own boto3/pydantic: their own environment, like SAM's.
LINT_VENV := .venv-lint
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
SAM_ENV := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1
# sam build (python3.13 runtime, no container) needs a python3.13 on PATH: perimeter_local.python313
# finds one (PYTHON313=/path, python3.13 on PATH, or pyenv's newest 3.13) and links it here.
PY313_DIR := .perimeter/python313

.PHONY: help demo test unit lint validate build bench bench-deps bench-replay clean

help:
	@echo "make demo         - run Perimeter on an embedded AWS (moto) and show what it does"
	@echo "make test         - lint, then the whole test suite (unit, integration, e2e, template checks)"
	@echo "make unit         - the pure unit tests only"
	@echo "make lint         - ruff"
	@echo "make validate     - sam validate --lint (offline)"
	@echo "make build        - sam build (needs Python 3.13: python3.13 on PATH, pyenv, or PYTHON313=/path)"
	@echo "make bench        - benchmarks vs Cloud Custodian (event path, exposure window, cold start), imports, memory"
	@echo "make bench-deps   - install what the benchmarks need (.venv and .venv-c7n)"
	@echo "make bench-replay - perimeter replay over a generated million-record CloudTrail history"
	@echo "make clean        - remove the virtual environments, build output and .perimeter/"
	@echo "make help         - this list"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet 'aws-sam-cli==1.170.0'
	touch $@

$(LINT_VENV)/.installed:
	$(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install --quiet --upgrade pip
	$(LINT_VENV)/bin/pip install --quiet 'cfn-lint==1.58.0' 'checkov==3.3.30'
	touch $@

$(C7N_VENV)/.installed: bench/requirements-c7n.txt
	$(PYTHON) -m venv $(C7N_VENV)
	$(C7N_VENV)/bin/pip install --quiet -r bench/requirements-c7n.txt
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/perimeter demo

test: $(VENV)/.installed $(SAM_VENV)/.installed $(LINT_VENV)/.installed lint
	PERIMETER_SAM=$(abspath $(SAM)) PERIMETER_CFN_LINT=$(abspath $(LINT_VENV)/bin/cfn-lint) \
	PERIMETER_CHECKOV=$(abspath $(LINT_VENV)/bin/checkov) $(PY) -m pytest -q

unit: $(VENV)/.installed
	$(PY) -m pytest -q tests/unit

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check layers functions local tests bench

validate: $(SAM_VENV)/.installed
	$(SAM_ENV) $(SAM) validate --lint

build: $(VENV)/.installed $(SAM_VENV)/.installed
	@dir=$$($(PY) -m perimeter_local.python313 $(PY313_DIR)) && \
	  echo "sam build with python3.13 from $$dir" && \
	  PATH="$$dir:$$PATH" $(SAM_ENV) $(SAM) build

bench-deps: $(VENV)/.installed $(C7N_VENV)/.installed

# Each prints its figures with their goals and ends with one verdict line; all run, and the
# target fails if any missed its goal.
BENCHES := \
	"bench/decide.py" \
	"bench/event_path.py --events 200 --runs 3" \
	"bench/cold_start.py --runs 7" \
	"bench/cold_import.py" \
	"bench/memory.py --events 10000"

bench: bench-deps
	@status=0; for b in $(BENCHES); do echo "== $$b"; $(PY) $$b || status=1; done; exit $$status

bench-replay: $(VENV)/.installed
	$(PY) bench/replay.py

clean:
	rm -rf $(VENV) $(SAM_VENV) $(C7N_VENV) $(LINT_VENV) .aws-sam .perimeter
