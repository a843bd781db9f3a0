# kbridge — the commands CI and developers share. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install system-deps test check lint fmt typecheck contracts pytest demo serve emulator catalog blocking benchmarks clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install kbridge with its dev extras

# The PostgreSQL tests start a throwaway server on loopback from Debian's
# postgresql package, and the report tests open the HTML report in Debian's
# headless chromium; install them when missing (root, as on CI).
system-deps: ## install Debian's postgresql server binaries, chromium and redis-server if missing
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then \
	  true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's postgresql for the warehouse tests"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else \
	  echo "PostgreSQL server binaries (initdb) are missing: install Debian's postgresql package" >&2; exit 1; \
	fi
	@if command -v chromium >/dev/null 2>&1; then \
	  true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the report's browser tests"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "chromium is missing: install Debian's chromium package" >&2; exit 1; \
	fi
	@if [ -x /usr/bin/redis-server ] || command -v redis-server >/dev/null 2>&1; then \
	  true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's redis-server for the service's shared rate-budget tests"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	else \
	  echo "redis-server is missing: install Debian's redis-server package" >&2; exit 1; \
	fi

lint: $(STAMP) ## ruff lint + format check
	$(BIN)/ruff check src tests scripts benchmarks
	$(BIN)/ruff format --check src tests scripts benchmarks

typecheck: $(STAMP) ## mypy --strict on src
	$(BIN)/mypy --strict src

contracts: $(STAMP) ## the layer arrows of docs/architecture.md
	$(BIN)/lint-imports

pytest: $(STAMP) system-deps ## the test suite
	$(BIN)/pytest

check: lint typecheck contracts ## static checks only

test: lint typecheck contracts pytest ## everything CI runs

fmt: $(STAMP) ## format and autofix
	$(BIN)/ruff format src tests scripts benchmarks
	$(BIN)/ruff check --fix src tests scripts benchmarks

catalog: $(STAMP) ## regenerate src/kbridge/catalog/operations.jsonl from the OpenAPI spec
	$(BIN)/python scripts/gen_catalog.py

blocking: $(STAMP) ## regenerate src/kbridge/api/_blocking.py (typed Client services) from the async services
	$(BIN)/python scripts/gen_blocking.py

emulator: $(STAMP) ## serve the Klaviyo emulator on 127.0.0.1:8765
	$(BIN)/kbridge emulator serve

demo: $(STAMP) ## the main job on embedded defaults (emulator + DuckDB)
	$(BIN)/kbridge demo

# a fresh data directory each time, removed on exit; PORT=8081 make serve for another port
PORT ?= 8080
serve: $(STAMP) ## the dashboard on embedded defaults: two emulator accounts connected and synced
	$(BIN)/python -m benchmarks.dashboard --serve --port $(PORT)

benchmarks: $(STAMP) ## run the benchmark tables
	$(BIN)/python -m benchmarks

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
