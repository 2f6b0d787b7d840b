# bclake: every command a user runs. All targets honour BCLAKE_HOME (default ./data).
SHELL := /bin/bash
.DEFAULT_GOAL := help

export BCLAKE_HOME := $(abspath $(or $(BCLAKE_HOME),data))
export DAGSTER_HOME := $(BCLAKE_HOME)/dagster
export STREAMLIT_BROWSER_GATHER_USAGE_STATS := false

SCALE ?= demo
SEED ?= 42
PORT ?= 8501
DAGSTER_PORT ?= 3000
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV := .venv
BIN := $(VENV)/bin
ENV_STAMP := $(VENV)/.bclake-env
MANIFEST := dbt_project/target/manifest.json
DBT_FILES := $(shell find dbt_project/models dbt_project/macros dbt_project/tests dbt_project/seeds -type f 2>/dev/null) \
             dbt_project/dbt_project.yml dbt_project/profiles.yml dbt_project/kpis.yml
LANDING_STAMP := $(BCLAKE_HOME)/landing/_simulation.json
PUBLISHED := $(BCLAKE_HOME)/warehouse/published.duckdb

.PHONY: help env demo test pipeline simulate serve dagster docs lint bench clean system-tools

help: ## List the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(ENV_STAMP): pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen
	@touch $@

$(MANIFEST): $(ENV_STAMP) $(DBT_FILES)
	cd dbt_project && ../$(BIN)/dbt parse --profiles-dir . --quiet
	@touch $@

env: $(ENV_STAMP) $(MANIFEST) ## Create or refresh the environment from uv.lock and parse the dbt project

simulate: env ## Simulate sources into landing/ (SCALE=tiny|demo|large SEED=n)
	$(BIN)/bclake simulate --scale $(SCALE) --seed $(SEED)

$(LANDING_STAMP):
	$(MAKE) --no-print-directory simulate

pipeline: env ## Materialise every asset over landing/; non-zero exit on any failure
	$(BIN)/bclake pipeline

$(PUBLISHED): $(LANDING_STAMP)
	$(MAKE) --no-print-directory pipeline

demo: env $(PUBLISHED) ## Set up, simulate, run the pipeline (skipped when up to date) and serve
	@echo ""
	@echo "Planner files: $(BCLAKE_HOME)/exports/"
	@echo "Dagster UI:    make dagster   (then open http://localhost:$(DAGSTER_PORT))"
	@$(MAKE) --no-print-directory serve

serve: env ## Serve the dashboards over the published warehouse (PORT=8501; ADDRESS=127.0.0.1, this host only)
	$(BIN)/bclake serve --port $(PORT) $(if $(ADDRESS),--address $(ADDRESS))

dagster: env ## Serve the Dagster UI on the same definitions (DAGSTER_PORT=3000), telemetry off
	$(BIN)/bclake dagster --port $(DAGSTER_PORT)

# system tools some tests drive (a spreadsheet tool reading our XLSX; a real browser):
# installed from Debian when missing and we may (root with apt-get); else those tests skip
SYSTEM_TOOLS := soffice:libreoffice-calc-nogui chromium:chromium
system-tools: ## Install LibreOffice Calc, Chromium and CJK fonts from Debian if missing
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; done; \
	fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || missing="$$missing fonts-noto-cjk"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing:$$missing"; \
	  (apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1 || \
	   (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1)) \
	  || echo "could not install$$missing: the tests that need them will skip"; \
	else echo "missing$$missing (not root or no apt-get): the tests that need them will skip"; fi

test: env system-tools ## Run the test suite (pytest's "no tests collected" is not a failure)
	@$(BIN)/pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; rc=0; fi; exit $$rc

BENCH_SCALES ?= tiny,demo
# simulated worlds the ingest bench keeps between runs (large takes minutes to simulate)
BENCH_HOME ?= $(BCLAKE_HOME)-bench
bench: env ## Benchmarks (BENCH_SCALES=tiny,demo,large); prints timings and ratios, asserts nothing
	$(BIN)/python -m bench.simulator_bench --scales $(BENCH_SCALES)
	$(BIN)/python -m bench.ingest_bench --scale demo --root $(BENCH_HOME)/demo
	$(BIN)/python -m bench.ingest_bench --scale large --root $(BENCH_HOME)/large
	$(BIN)/python -m bench.warehouse_bench --root $(BENCH_HOME)/demo
	$(BIN)/python -m bench.warehouse_bench --root $(BENCH_HOME)/large --full-only
	$(BIN)/python -m bench.engines_bench --root $(BENCH_HOME)/demo
	$(BIN)/python -m bench.supply_bench --scales $(BENCH_SCALES)
	$(BIN)/python -m bench.engines_bench --root $(BENCH_HOME)/large
	$(BIN)/python -m bench.forecast_bench --root $(BENCH_HOME)/demo
	$(BIN)/python -m bench.forecast_bench --sizes
	$(BIN)/python -m bench.forecast_bench --busy
	$(BIN)/python -m bench.train_backend_bench
	BCLAKE_HOME=$(BENCH_HOME)/demo $(BIN)/bclake pipeline
	$(BIN)/python -m bench.dashboard_bench --root $(BENCH_HOME)/demo
	$(BIN)/python -m bench.rotation_bench --root $(BENCH_HOME)/demo  # on a copy: the root keeps its key
	$(BIN)/python -m bench.erasure_bench --root $(BENCH_HOME)/demo  # last: it erases a consumer

DOCS_PORT ?= 8081
docs: env ## Serve the dbt docs (models, columns, tests, lineage) on DOCS_PORT, from a copy of the published warehouse
	@test -f $(PUBLISHED) || { echo "$(PUBLISHED) is missing: run make pipeline first"; exit 1; }
	@mkdir -p $(BCLAKE_HOME)/docs && cp $(PUBLISHED) $(BCLAKE_HOME)/docs/catalog.duckdb
	cd dbt_project && BCLAKE_BUILD_DB=$(BCLAKE_HOME)/docs/catalog.duckdb BCLAKE_LAKE=$(BCLAKE_HOME)/lake \
		../$(BIN)/dbt docs generate --target-path $(BCLAKE_HOME)/docs/target && \
		../$(BIN)/dbt docs serve --target-path $(BCLAKE_HOME)/docs/target --port $(DOCS_PORT) --no-browser

# sqlfluff renders the models with dbt, which opens the profile: an in-memory database
# and the data root's lake path (only written into source locations, never read) suffice
lint: env ## ruff, the import layers (import-linter) and the SQL (sqlfluff)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	BCLAKE_BUILD_DB=:memory: BCLAKE_LAKE=$(BCLAKE_HOME)/lake $(BIN)/sqlfluff lint dbt_project/models

clean: ## Delete everything generated under BCLAKE_HOME
	rm -rf $(BCLAKE_HOME)/landing $(BCLAKE_HOME)/truth $(BCLAKE_HOME)/lake \
	       $(BCLAKE_HOME)/warehouse $(BCLAKE_HOME)/exports $(BCLAKE_HOME)/dagster
