# pdesolve: `make run` (default experiment) and `make test` set everything up first if needed.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup run test lint docs bench clean-venv

setup:
	@bash scripts/setup.sh

run: setup
	$(PY) -m pdesolve compare

test: setup
	$(VENV)/bin/ruff check pdesolve tests experiments scripts examples
	$(PY) -m pytest -q
	$(VENV)/bin/mkdocs build --strict --quiet

docs: setup
	$(VENV)/bin/mkdocs build --strict

lint: setup
	$(VENV)/bin/ruff check pdesolve tests experiments scripts examples

bench: setup
	$(PY) experiments/baselines/run.py

clean-venv:
	rm -rf $(VENV)

# The prepared CUDA-vs-CPU check of the neural parts (experiments/gpu/README.md). It needs no
# set-up: on a GPU machine without the venv, `make gpu-check PY=python3`.
GPU_OUT ?= experiments/gpu/results/$(shell date -u +%Y%m%d-%H%M%S)
.PHONY: gpu-check
gpu-check:
	$(PY) experiments/gpu/check.py --out $(GPU_OUT)
