#!/usr/bin/env bash
# The GPU check: the quickstart pipeline on one CUDA GPU, from the project's own files, in at most 8 minutes.
#   scripts/gpu-check.sh                 build the CUDA venv (build/gpu-venv) as images/trainer/Dockerfile
#                                        does, then run examples/quickstart-gpu-pipeline.yaml stage by stage
#   scripts/gpu-check.sh --venv DIR      use an existing CUDA venv (e.g. /opt/venv in the trainer image)
#   scripts/gpu-check.sh --dry-run       print the plan (environment steps, stages, limits) and exit 0;
#                                        needs no GPU (tests/unit/test_gpu_check_script.py runs it)
# Options: --manifest FILE (default examples/quickstart-gpu-pipeline.yaml), --workdir DIR (default
# runs/gpu-check, cleared first), --budget SECONDS (default 480: the whole check, the build included).
# For each stage it prints the wall time, the peak GPU memory (nvidia-smi's memory.used, sampled every
# 0.5 s while the stage runs, all processes on the GPU) and the stage's metrics (its summary.json via
# <workdir>/<stage>/status.json); it exits non-zero on any failure: no GPU, a failed build, a failed
# stage, or the budget spent (the running stage is stopped). The builtin models come from $RLAIF_CACHE
# (default ~/.cache/rlaif), built there on first use; on a machine without network access build them
# beforehand (RLAIF_MODELS="qwen2.5-coder-1.5b-instruct smollm2-135m-instruct" scripts/bootstrap.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

MANIFEST=examples/quickstart-gpu-pipeline.yaml
WORKDIR=runs/gpu-check
BUDGET=480
VENV=
DRY_RUN=0
DEEPSPEED_VERSION=0.19.8  # as images/trainer/Dockerfile
PYTHON=${PYTHON:-python3.11}

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --venv) VENV=${2:?--venv needs a directory}; shift ;;
    --manifest) MANIFEST=${2:?--manifest needs a file}; shift ;;
    --workdir) WORKDIR=${2:?--workdir needs a directory}; shift ;;
    --budget) BUDGET=${2:?--budget needs seconds}; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$BUDGET" =~ ^[0-9]+$ ]] || { echo "gpu-check: --budget $BUDGET: not a number of seconds" >&2; exit 2; }
[ -f "$MANIFEST" ] || { echo "gpu-check: no manifest $MANIFEST" >&2; exit 2; }

BUILD_VENV=0
if [ -z "$VENV" ]; then
  VENV=build/gpu-venv
  BUILD_VENV=1
fi
LOG=$WORKDIR/gpu-check.log
began=$SECONDS
left() { echo $(( BUDGET - (SECONDS - began) )); }
fail() { echo "gpu-check: FAILED: $*" >&2; exit 1; }

# The stages of the manifest in run order (the local runner's own planner): "NAME OUTPUT_URI" per line.
stages() {
  "$1" - "$MANIFEST" <<'PY'
import sys
from rlaif_operator.api import load_resources
from rlaif_operator.local.plan import expand, order
for s in order(expand(load_resources(sys.argv[1])), {}):
    print(s.metadata.name, s.spec.output.uri)
PY
}

build_steps=(
  "$PYTHON -m venv $VENV"
  "$VENV/bin/python -m pip install --no-deps -r images/locks/trainer.txt"
  "DS_BUILD_OPS=0 $VENV/bin/python -m pip install --no-deps --no-build-isolation deepspeed==$DEEPSPEED_VERSION"
  "$VENV/bin/python -m pip install --no-deps ."
  "$VENV/bin/python -m pip check"
  "$VENV/bin/python -c 'import torch, deepspeed, vllm, rlaif_jobs.policy, rlaif_jobs.reward; assert torch.cuda.is_available(), \"torch sees no CUDA device\"'"
)

if [ "$DRY_RUN" = 1 ]; then
  echo "gpu-check plan (dry run: nothing is built or run)"
  echo "manifest: $MANIFEST; workdir: $WORKDIR (cleared first); budget: ${BUDGET}s for everything"
  if [ "$BUILD_VENV" = 1 ]; then
    echo "environment: build $VENV (as images/trainer/Dockerfile; DeepSpeed's ops compile on first use):"
    for step in "${build_steps[@]}"; do echo "  $ $step"; done
  else
    echo "environment: use $VENV as it is"
  fi
  planner=$VENV/bin/python
  [ -x "$planner" ] || planner=.venv/bin/python
  [ -x "$planner" ] || planner=$PYTHON
  echo "stages (each: rlaif run $MANIFEST --workdir $WORKDIR --only STAGE, under the time left;"
  echo "        nvidia-smi memory.used sampled every 0.5 s; local outputs cleared first):"
  plan=$(stages "$planner") || fail "cannot read the stages of $MANIFEST"
  while read -r name out; do echo "  $name -> $out"; done <<< "$plan"
  exit 0
fi

command -v nvidia-smi >/dev/null || fail "nvidia-smi not found: this check needs a CUDA GPU"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >/dev/null \
  || fail "nvidia-smi cannot query a GPU"
rm -rf "$WORKDIR"
mkdir -p "$WORKDIR"
echo "gpu-check: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -n 1); log: $LOG"

if [ "$BUILD_VENV" = 1 ]; then
  t=$SECONDS
  for step in "${build_steps[@]}"; do
    [ "$(left)" -gt 0 ] || fail "budget of ${BUDGET}s spent while building the environment"
    echo "+ $step" >> "$LOG"
    timeout "$(left)" bash -c "$step" >> "$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; fail "environment step: $step"; }
  done
  echo "environment: $VENV built in $(( SECONDS - t ))s"
else
  [ -x "$VENV/bin/rlaif" ] || fail "--venv $VENV: no bin/rlaif there (pip install the project into it)"
  "$VENV/bin/python" -c 'import torch; assert torch.cuda.is_available()' 2>> "$LOG" \
    || fail "--venv $VENV: its torch sees no CUDA device"
fi

plan=$(stages "$VENV/bin/python") || fail "cannot read the stages of $MANIFEST"
STAGES=()
OUTPUTS=()
while read -r name out; do
  STAGES+=("$name")
  OUTPUTS+=("$out")
  # a fresh run: a trainer would resume from the checkpoints of an earlier check in its output folder
  case "$out" in *://*) ;; *) rm -rf "${out#file://}" ;; esac
done <<< "$plan"
[ "${#STAGES[@]}" -gt 0 ] || fail "$MANIFEST has no stages"
baseline=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -n 1)
sampler=
stop_sampler() { if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; sampler=; fi; }
trap stop_sampler EXIT

rows=()
for stage in "${STAGES[@]}"; do
  remaining=$(left)
  [ "$remaining" -gt 0 ] || fail "budget of ${BUDGET}s spent before stage $stage"
  mem=$WORKDIR/$stage.gpu-memory.csv
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$mem" 2>/dev/null &
  sampler=$!
  t=$SECONDS
  rc=0
  timeout --signal=TERM --kill-after=20 "$remaining" \
    "$VENV/bin/rlaif" run "$MANIFEST" --workdir "$WORKDIR" --only "$stage" >> "$LOG" 2>&1 || rc=$?
  took=$(( SECONDS - t ))
  stop_sampler
  peak=$(sort -n "$mem" | tail -n 1)
  peak=${peak:-0}
  metrics=$("$VENV/bin/python" - "$WORKDIR/$stage/status.json" <<'PY' 2>/dev/null || echo "{}"
import json, sys
status = json.load(open(sys.argv[1]))
print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in status.get("metrics", {}).items()}))
PY
)
  line="$stage: ${took}s, peak GPU memory ${peak} MiB (${baseline} MiB before), metrics $metrics"
  echo "$line"
  rows+=("$line")
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$LOG" >&2
    [ "$rc" -eq 124 ] && fail "$stage ran past the budget of ${BUDGET}s"
    fail "$stage exited with $rc (log: $LOG, $WORKDIR/$stage/log.txt)"
  fi
done

# The policy stage reports whether vLLM slept through its updates (rollout.sleepMode) in its summary.
for i in "${!STAGES[@]}"; do
  summary=${OUTPUTS[$i]#file://}/summary.json
  [ -f "$summary" ] || continue
  "$VENV/bin/python" - "$summary" "${STAGES[$i]}" <<'PY' || true
import json, sys
s = json.load(open(sys.argv[1]))
if "rollout" in s:
    print(f"{sys.argv[2]}: rollout {s['rollout']}, rollout engine {s.get('rolloutEngine')}")
PY
done
echo "gpu-check: passed, ${#STAGES[@]} stages in $(( SECONDS - began ))s (budget ${BUDGET}s)"
