# pdesolve: `make run` (default experiment) and `make test` set everything up first if needed.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup run test lint docs bench clean-venv

setup:
	@bash scripts/setup.sh

run: setup
	$(PY) -m pdesolve compare

test: setup
	$(VENV)/bin/ruff check pdesolve tests experiments data
	$(PY) -m pytest -q
	$(VENV)/bin/mkdocs build --strict --quiet

docs: setup
	$(VENV)/bin/mkdocs build --strict

lint: setup
	$(VENV)/bin/ruff check pdesolve tests experiments data

bench: setup
	$(PY) experiments/baselines/run.py

clean-venv:
	rm -rf $(VENV)
