#!/usr/bin/env bash
# Make .venv ready: create it if missing and install requirements.txt plus this package (editable).
# Sourced by tools/test.sh and tools/book.sh; a second call with unchanged requirements installs nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${ANNOTATED_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(cat requirements.txt requirements-nodeps.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing requirements into $VENV (a few minutes the first time)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  # torch alone and first, exactly this version: it is the CPU build; anything looser pulls a CUDA build.
  "$VENV/bin/python" -m pip install -q torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -m pip install -q -r requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -m pip install -q --no-deps -r requirements-nodeps.txt 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -m pip install -q --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -c "import annotated, torch, nbval, jupyter_book" # fail here, not later, if an install failed
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
export PATH="$PWD/$VENV/bin:$PATH"
