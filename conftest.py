"""pytest set-up shared by the unit tests and nbval's notebook runs.

* nbval compares printed results of the form ``3.12 ± 0.08`` within their tolerance (``tools/nbval_tolerance.py``),
  so the stored outputs validate on any CPU or GPU; everything else is compared exactly.
* Every notebook kernel gets the same environment as the executor's (``tools/kernel_env.py``), so stored outputs
  and re-run outputs are comparable.
* With ``ANNOTATED_VALIDATE_ISA=1`` each notebook's kernel starts under an instruction set that notebook's stored
  outputs were not computed under (``tools/isa.py``, ``notebook_validation_env``); other tests run as the process does.
* Under pytest-xdist (``tools/test.sh`` runs two workers) the workers share the machine's cores: each notebook
  kernel, and the worker's own torch, gets cores // workers threads (at least one) instead of the two the outputs
  were stored with. A thread count changes the order of floating-point sums as an instruction set does, so this is
  a second portability check, not a weaker one.
* With ``--nbval``, collecting no notebook is an error: a misconfigured run must not pass by testing nothing.
* The time each notebook took is printed at the end and written to ``_build/notebook-times.md``.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

from tools.isa import ISA_VARIABLES, PER_NOTEBOOK_SWITCH, native_capability, notebook_validation_env
from tools.kernel_env import apply_kernel_env, kernel_threads
from tools.nbexport import chapter_notebooks


# nbval compares every ``value ± tolerance`` within its tolerance (tools/tolerance.py), everything else exactly.
pytest_plugins = ["tools.nbval_tolerance"]

collect_ignore_glob = ["notebooks/drafts/*", "_build/*", ".venv/*"]

_notebook_seconds: dict[str, float] = defaultdict(float)
_notebook_cells: dict[str, int] = defaultdict(int)
_notebook_failed: set[str] = set()


_process_isa_env: dict[str, str] = {}
_native_capability = cache(native_capability)  # asked once per session: it starts a Python process


def pytest_configure(config: pytest.Config) -> None:
    apply_kernel_env()  # under pytest-xdist, with this worker's share of the cores as the thread count
    if "torch" in sys.modules:  # imported before this hook: the variables come too late for it
        sys.modules["torch"].set_num_threads(kernel_threads())
    _process_isa_env.update({name: os.environ[name] for name in ISA_VARIABLES if name in os.environ})


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a notebook's kernel starts (with its first cell), set the instruction set it is validated under."""
    if os.environ.get(PER_NOTEBOOK_SWITCH) != "1":
        return
    for name in ISA_VARIABLES:
        os.environ.pop(name, None)
    if item.path.suffix == ".ipynb":
        os.environ.update(notebook_validation_env(item.path, _native_capability()))
    else:
        os.environ.update(_process_isa_env)


def pytest_collection_finish(session: pytest.Session) -> None:
    if not session.config.getoption("nbval", default=False):
        return
    collected = {item.path for item in session.items if item.path.suffix == ".ipynb"}
    selected_files = [Path(arg.split("::")[0]) for arg in session.config.args]
    asked_for_all = any(p.is_dir() or p.suffix == ".ipynb" for p in selected_files) or not session.config.args
    if asked_for_all and chapter_notebooks() and not collected and not session.config.getoption("keyword"):
        raise pytest.UsageError("--nbval collected no notebook although notebooks/*.ipynb exist")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = report.nodeid.split("::")[0]
    if not path.endswith(".ipynb"):
        return
    _notebook_seconds[path] += report.duration
    if report.when == "call":
        _notebook_cells[path] += 1
    if report.failed:
        _notebook_failed.add(path)



def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _notebook_seconds:
        return
    lines = ["| notebook | cells run | seconds | result |", "|---|---:|---:|---|"]
    for path, seconds in sorted(_notebook_seconds.items()):
        result = "failed" if path in _notebook_failed else "passed"
        lines.append(f"| {path} | {_notebook_cells[path]} | {seconds:.0f} | {result} |")
    lines.append(f"| total | {sum(_notebook_cells.values())} | {sum(_notebook_seconds.values()):.0f} | |")
    terminalreporter.write_sep("-", "time per notebook (nbval, this run)")
    for line in lines:
        terminalreporter.write_line(line)
    output = Path(config.rootpath) / "_build" / "notebook-times.md"
    output.parent.mkdir(exist_ok=True)
    output.write_text("\n".join(lines) + "\n", encoding="utf-8")
