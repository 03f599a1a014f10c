#!/usr/bin/env bash
# Build the separate virtual environment in which the reference implementations
# (RCAEval 1.8.1, and sfr-pyrca 1.0.1 for e-diagnosis) run for the differential check.
#
# Usage: scripts/reference/build_env.sh [VENV_DIR]
#   VENV_DIR defaults to $RCAEVAL_VENV or /tmp/rcaeval-venv.
#   PYTHON selects the interpreter (default: python3.11, else python3); it must be Python 3.11.
#
# The environment never touches this project's own environment: the reference
# pins numpy<2 and old libraries, which is why it lives apart.
set -euo pipefail

VENV="${1:-${RCAEVAL_VENV:-/tmp/rcaeval-venv}}"
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"

ver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$ver" != "3.11" ]; then
  echo "error: $PY is Python $ver; the reference needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet \
  "RCAEval==1.8.1" "numpy<2" "pandas>=2,<3" scikit-learn requests tqdm matplotlib networkx \
  causal-learn scikit-network "statsmodels>=0.14.2,<0.15"
# PyRCA provides RCAEval's e-diagnosis; its own pins conflict with the above,
# so it is installed without dependencies (what it imports is already there).
"$VENV/bin/python" -m pip install --quiet "sfr-pyrca==1.0.1" --no-deps
# What the compared methods import beyond the list above: PyRCA's config loader
# (pyyaml, dill, pkg_resources from setuptools<81), pingouin and tigramite for microcause, lingam for
# lingam_pagerank / lingam_randomwalk, and torch for causalrca
# (the CPU build, pinned; an unpinned torch pulls a multi-GB CUDA build).
"$VENV/bin/python" -m pip install --quiet pyyaml dill "setuptools<81" pingouin tigramite lingam "torch==2.13.0" "numpy<2"

"$VENV/bin/python" - <<'PY'
import importlib
for mod in ("RCAEval.e2e.circa", "RCAEval.e2e.pc_pagerank", "RCAEval.e2e.baro"):
    importlib.import_module(mod)
print("reference environment ready")
PY
echo "$VENV"
