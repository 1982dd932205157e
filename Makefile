# Two commands for a new user:  `make demo` (set up + run the pipeline on the demo data, offline)
# and `make test` (set up + run the tests). Both create .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.vadlib-installed
# The offline demo runs in a workspace of its own (the same dvc.yaml, params.yaml with
# params.demo.yaml merged in, its own dvc.lock and outputs), so params.yaml, dvc.lock and the
# outputs here stay those of the real configuration. See vadlib/workspace.py.
DEMO   ?= build/demo
DEMO_SET ?=
PYTEST_ARGS ?=
RUN    := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: setup demo real test bench clean-demo

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/dvc config --local core.analytics false 2>/dev/null || true
	touch $(STAMP)

# The whole pipeline on the generated demo benchmark, no network needed (tiny random-weight
# backbone, params.demo.yaml; every output is marked RANDOM WEIGHTS), in $(DEMO)/. A second
# `make demo` runs nothing unless code or params changed.
demo: setup
	$(RUN) $(BIN)/python -m vadlib.workspace $(DEMO) --overrides params.demo.yaml $(foreach s,$(DEMO_SET),--set $(s))
	cd $(DEMO) && $(RUN) dvc repro
	$(BIN)/python -c "import pandas as pd; t = pd.read_csv('$(DEMO)/reports/report/results.csv'); \
	  t = t[t.kind == 'measured']; t['weights'] = t.real_weights.map({True: 'real', False: 'RANDOM'}).where(~t.backbone.astype(str).str.startswith('none'), 'n/a').fillna('n/a'); \
	  print(t[['stage', 'method', 'dataset', 'micro_auc', 'weights']].to_string(index=False, float_format='%.1f'))"
	@echo "The demo's page: $(DEMO)/reports/report/index.html"

# Remove the demo workspace (outputs, its dvc.lock and cache).
clean-demo:
	rm -rf $(DEMO)

# The pipeline with the params.yaml defaults (real ViT-B-16 / openai weights: needs them cached
# or downloadable; see README "Backbones").
real: setup
	$(RUN) dvc repro

test: setup
	$(RUN) $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

bench: setup
	$(BIN)/python -m vadlib.bench --help
