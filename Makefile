# Every target installs what it needs on a fresh machine: the venv, then the locked set.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: install demo test test-fast lint ui bench bench-forecaster dashboard clean prod-up prod-demo prod-ui prod-down

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,production]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/energy-platform demo

# The tests' throw-away homes go to a RAM disk when the machine has one with room (4 GB; a run
# writes ~1.1 GB): Dagster's and MLflow's SQLite and DuckDB commit each event to disk, and an fsync
# there costs ~13x one on tmpfs (a replay test: 66 -> 56 s). Elsewhere the system's temp folder.
TEST_TMPDIR := $(shell df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 && $$4 > 4000000 {print "/dev/shm/energy_platform_tests"}')
TEST_ENV := $(if $(TEST_TMPDIR),mkdir -p $(TEST_TMPDIR) && TMPDIR=$(TEST_TMPDIR))

# Every test (what CI runs), two workers: much of the suite waits on servers and subprocesses.
test: install lint
	$(TEST_ENV) $(PY) -m pytest -q -n 2 --dist loadfile

# The edit loop: no servers, browsers, kills, trainings or replays (conftest.py's SLOW_MODULES).
test-fast: install lint
	$(TEST_ENV) $(PY) -m pytest -q -n 2 -m "not slow"

lint: install
	$(VENV)/bin/ruff check .

ui: install  # make ui PORT=3001
	$(VENV)/bin/energy-platform ui --port $(or $(PORT),3000)

dashboard: install  # make dashboard PORT=8502
	$(VENV)/bin/energy-platform dashboard --port $(or $(PORT),8501)

bench: install
	$(PY) -W ignore bench/bench_ingestion.py
	$(PY) -W ignore bench/bench_lifecycle.py
	$(PY) -W ignore bench/bench_monitoring.py
	$(PY) -W ignore bench/bench_analytics.py
	$(PY) -W ignore bench/bench_faults.py

bench-forecaster: install
	$(PY) -W ignore bench/bench_forecaster.py

# The production profile on this machine (README "Running beyond one machine"): PostgreSQL from
# the system's packages and an MLflow tracking server, both on 127.0.0.1, and a home of its own.
PROD_DIR ?= .energy_platform/prod
PROD_PG_PORT ?= 55432
PROD_MLFLOW_PORT ?= 5000

prod-up: install
	$(PY) -m energy_platform.local_services up $(PROD_DIR) --port $(PROD_PG_PORT) --mlflow-port $(PROD_MLFLOW_PORT)

prod-demo: prod-up
	. $(PROD_DIR)/profile.env && $(VENV)/bin/energy-platform demo

prod-ui: prod-up
	. $(PROD_DIR)/profile.env && $(VENV)/bin/energy-platform ui

prod-down:
	$(PY) -m energy_platform.local_services down $(PROD_DIR)

clean:
	rm -rf .energy_platform
