#!/usr/bin/env bash
# The unit tests (tests/, not the notebooks) under another Python that pyenv provides, in a venv of its own
# (.venv-py<version>), with requirements.txt's pins: `bash tools/test_python.sh 3.12 [pytest arguments]`.
# torch==2.13.0 is a CPU build on disk for Python 3.11 only: other Pythons download PyPI's build (several GB).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
version=${1:?"usage: bash tools/test_python.sh VERSION [pytest arguments], e.g. 3.12"}
shift
interpreter=$(ls -d "$(pyenv root)/versions/$version"*/bin/python | sort -V | tail -1)
export ANNOTATED_VENV=".venv-py$version" PYTHON="$interpreter"
source tools/setup_env.sh
python --version
python -m pytest tests "$@"
