#!/usr/bin/env bash
# The whole test suite: export check, notebook normalisation check, unit tests and nbval on every chapter.
# Extra arguments go to pytest, e.g. `bash tools/test.sh tests/test_utils.py` or `-k export`.
# Two pytest-xdist workers (ANNOTATED_TEST_WORKERS, or `-n 0` for one process), each running whole files (a notebook
# needs its cells in one kernel), in the order pyproject's testpaths give: the long notebooks first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
python -m tools.nbexport --check
ruff check .   # pyflakes, bugbear and import order (pyproject.toml), generated modules included
python -m tools.nbexec --check
python -m pytest -n "${ANNOTATED_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg "$@"
echo "tests passed; per-notebook times are in _build/notebook-times.md"
