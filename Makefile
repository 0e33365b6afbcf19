# The contract: the same targets run on a laptop and in CI. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
C7N_VENV := .venv-c7n
# cfn-lint and checkov pin their own boto3/pydantic: their own environment, like SAM's.
LINT_VENV := .venv-lint
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
# sam build finds python3.13 through pyenv when the image has it (FACTS.md).
SAM_ENV := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 PYENV_VERSION=3.11.7:3.12.1:3.13.0

.PHONY: help demo test unit lint validate build bench bench-deps bench-replay clean

help:
	@echo "make demo    - run Perimeter on an embedded AWS (moto) and show what it does"
	@echo "make test    - the whole test suite (unit, integration, e2e, template checks)"
	@echo "make lint    - ruff"
	@echo "make bench   - benchmarks (calls per event, handler time vs Cloud Custodian, cold import)"
	@echo "make bench-replay - perimeter replay over a generated million-record CloudTrail history"
	@echo "make validate / make build - sam validate --lint / sam build"

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

build: $(SAM_VENV)/.installed
	$(SAM_ENV) $(SAM) build

bench-deps: $(VENV)/.installed $(C7N_VENV)/.installed

bench: bench-deps
	$(PY) bench/event_path.py --events 200
	$(PY) bench/cold_import.py

bench-replay: $(VENV)/.installed
	$(PY) bench/replay.py

clean:
	rm -rf $(VENV) $(SAM_VENV) $(C7N_VENV) $(LINT_VENV) .aws-sam .perimeter
