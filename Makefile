# Every target installs what it needs on a fresh machine: the venv, then the locked set.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: install demo test ui bench bench-forecaster dashboard clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/energy-platform demo

test: install
	$(PY) -m pytest -q

ui: install
	$(VENV)/bin/energy-platform ui

dashboard: install
	$(VENV)/bin/energy-platform dashboard

bench: install
	$(PY) -W ignore bench/bench_ingestion.py
	$(PY) -W ignore bench/bench_lifecycle.py
	$(PY) -W ignore bench/bench_monitoring.py
	$(PY) -W ignore bench/bench_analytics.py
	$(PY) -W ignore bench/bench_faults.py

bench-forecaster: install
	$(PY) -W ignore bench/bench_forecaster.py

clean:
	rm -rf .energy_platform
