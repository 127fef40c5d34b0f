# One entry point per job. Each target sets up what it needs first (idempotent, quick when done).
.PHONY: setup quickstart test test-fast bench bench-quickstart crds lint lock-images

PY := .venv/bin/python

setup:
	scripts/bootstrap.sh

## The main job: the whole RLAIF pipeline on this machine's CPU (labels -> reward model -> policy).
quickstart:
	RLAIF_MODELS=qwen2.5-coder-1.5b-instruct scripts/bootstrap.sh
	$(PY) -m rlaif_operator.cli run examples/quickstart-pipeline.yaml

## The full test suite (unit, integration against the test API server, workloads on real tiny models).
test: setup
	$(PY) -m pytest

## Unit tests only: seconds.
test-fast: setup
	$(PY) -m pytest tests/unit

bench:
	RLAIF_MODELS=qwen2.5-coder-1.5b-instruct scripts/bootstrap.sh bench
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

## The quickstart judged on time, memory and result: per stage wall, CPU, peak tree RSS and metrics.
bench-quickstart:
	RLAIF_MODELS=qwen2.5-coder-1.5b-instruct scripts/bootstrap.sh
	$(PY) bench/bench_quickstart.py examples/quickstart-pipeline.yaml

crds: setup
	$(PY) -m rlaif_operator.api.crdgen

## The images' lock files (images/locks/): every package each image installs, pinned.
lock-images: setup
	scripts/lock_images.sh

lint: setup
	$(PY) -m ruff check operator jobs tests bench scripts
	$(PY) -m mypy operator/rlaif_operator jobs/rlaif_jobs
	PYTHONPATH=operator:jobs .venv/bin/lint-imports --no-cache
