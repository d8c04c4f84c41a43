#!/usr/bin/env bash
# The whole test suite: export check, notebook normalisation check, unit tests and nbval on every chapter.
# Extra arguments go to pytest, e.g. `bash tools/test.sh tests/test_utils.py` or `-k export`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
python -m tools.nbexport --check
ruff check .   # pyflakes, bugbear and import order (pyproject.toml), generated modules included
python -m tools.nbexec --check
python -m pytest --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg "$@"
echo "tests passed; per-notebook times are in _build/notebook-times.md"
