# Two commands for a new user:  `make demo` (set up + run the pipeline on the demo data, offline)
# and `make test` (set up + run the tests). Both create .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.vadlib-installed
# The offline backbone: a tiny open_clip config with random weights, chosen explicitly.
OFFLINE := -S backbone.name=vadlib-tiny -S backbone.pretrained=random
PYTEST_ARGS ?=

.PHONY: setup demo real test bench clean-demo

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/dvc config --local core.analytics false 2>/dev/null || true
	touch $(STAMP)

# The whole pipeline on the generated demo benchmark, no network needed (tiny random-weight
# backbone; every output is marked RANDOM WEIGHTS). Recorded as a DVC experiment.
demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc exp run $(OFFLINE)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc exp show --no-pager --only-changed

# The pipeline with the params.yaml defaults (real ViT-B-16 / openai weights: needs them cached
# or downloadable; see README "Backbones").
real: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

bench: setup
	$(BIN)/python -m vadlib.bench --help
