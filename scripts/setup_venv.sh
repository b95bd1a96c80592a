#!/bin/sh
# Create (or re-use) the virtual environment $VENV with interpreter $PYTHON, install the
# PyTorch build $TORCH and graphattn with its dev extra. Called by the Makefile, which re-runs it
# whenever pyproject.toml, PYTHON, TORCH or TORCH_INDEX change.
#
# Where torch comes from: a wheel on this machine's disk (pip's find-links) if one satisfies
# $TORCH, else PyTorch's CPU wheel index $TORCH_INDEX. Never plain PyPI: there, torch for Linux
# is a CUDA build that pulls about a dozen nvidia-* packages.
set -eu
: "${PYTHON:=python3}" "${VENV:=.venv}" "${TORCH:=torch==2.13.0}"
: "${TORCH_INDEX:=https://download.pytorch.org/whl/cpu}"
PY="$VENV/bin/python"

if ! "$PYTHON" -c "import sys" >/dev/null 2>&1; then
    echo "error: PYTHON=$PYTHON does not run a Python interpreter here (not installed, or not on PATH)" >&2
    exit 1
fi
version() { "$1" -c 'import sys; print(sys.implementation.name, *sys.version_info[:3])'; }
if [ -x "$PY" ] && [ "$(version "$PY")" != "$(version "$PYTHON")" ]; then
    echo "$VENV was made with $(version "$PY"), PYTHON=$PYTHON is $(version "$PYTHON"): making it anew"
    rm -rf "$VENV"
fi
if [ ! -x "$PY" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$PY" -m pip install --quiet --upgrade pip

if "$PY" -m pip install --quiet --no-index --no-deps "$TORCH" 2>/dev/null; then
    echo "$TORCH: from this machine's disk"
else
    echo "$TORCH is not on this machine's disk: trying PyTorch's CPU wheel index $TORCH_INDEX"
    if ! "$PY" -m pip install --quiet --index-url "$TORCH_INDEX" "$TORCH"; then
        cat >&2 <<MSG

error: could not install $TORCH: it is not on this machine's disk, and PyTorch's CPU
wheel index ($TORCH_INDEX) could not serve it (unreachable from here, or no such
build). This set-up does not fall back to PyPI, where torch for Linux is a CUDA build.
Choose one:
  - a TORCH that is on this machine's disk (the default, torch==2.13.0, is on the
    project's machines);
  - TORCH_INDEX=<another PyTorch index>, e.g. https://download.pytorch.org/whl/cu126
    for a CUDA 12.6 build;
  - install the torch you want into $VENV yourself ($PY -m pip install ...), then run
    make with TORCH set to that version.
MSG
        exit 1
    fi
fi
"$PY" -m pip install --quiet "$TORCH"  # its dependencies (torch itself is in place)
"$PY" -m pip install --quiet -e ".[dev]"
"$PY" -c 'import torch; print("torch", torch.__version__, "in", "'"$VENV"'")'
