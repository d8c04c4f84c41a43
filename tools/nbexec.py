"""Execute chapter notebooks in a fresh kernel and store normalised outputs; or check that they are stored so.

Usage::

    python -m tools.nbexec notebooks/00_utils.ipynb   # run top to bottom, store outputs, normalise
    python -m tools.nbexec --all                      # every chapter (not drafts)
    python -m tools.nbexec --check                    # fail if a chapter is not executed and normalised
    python -m tools.nbexec --normalize PATH ...       # only normalise, no execution

Outputs and execution counts are kept. What changes from run to run without changing a result is dropped:
widget state, timing metadata, Colab provenance, the Python patch version, widget views whose state is gone.
What computed the outputs is recorded in the notebook's metadata (``annotated.outputs_computed_under``: PyTorch's
CPU capability, the machine, torch's version), so that CI can validate them under another instruction set
(``tools/isa.py``). Where a cell printed results with ``annotated.utils.with_tolerance``, the tolerance of each and
where it was printed go in the cell's metadata (``tolerances``, see ``tools/tolerance.py``), which the nbval plugin
reads.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tools.isa import METADATA_KEY, RECORD_KEY, execution_record, stored_capability, torch_capability
from tools.kernel_env import apply_kernel_env
from tools.nbexport import cell_source, chapter_notebooks
from tools.tolerance import METADATA_KEY as TOLERANCE_KEY
from tools.tolerance import TOLERANCE_LOG_ENV_VAR, ambiguous, locate


KEPT_NOTEBOOK_METADATA = {"kernelspec", "language_info", METADATA_KEY}
KEPT_CELL_METADATA = {"tags", TOLERANCE_KEY}
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
DROPPED_OUTPUT_DATA = {"application/vnd.jupyter.widget-view+json"}
CELL_TIMEOUT_S = 1200


def normalize_output(output: dict) -> dict:
    output = copy.deepcopy(output)
    data = output.get("data")
    if isinstance(data, dict):
        for key in DROPPED_OUTPUT_DATA & set(data):
            del data[key]
    return output


def normalize_notebook(notebook: dict) -> dict:
    """Return a copy of the notebook without volatile metadata; outputs and execution counts are kept."""
    notebook = copy.deepcopy(notebook)
    metadata = {key: value for key, value in notebook.get("metadata", {}).items() if key in KEPT_NOTEBOOK_METADATA}
    metadata["kernelspec"] = dict(KERNELSPEC)
    metadata["language_info"] = {"name": "python"}
    notebook["metadata"] = metadata
    notebook["nbformat"], notebook["nbformat_minor"] = 4, 5
    for index, cell in enumerate(notebook["cells"]):
        cell["metadata"] = {key: value for key, value in cell.get("metadata", {}).items() if key in KEPT_CELL_METADATA}
        cell.setdefault("id", f"cell-{index}")
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        if cell["cell_type"] == "code":
            outputs = [normalize_output(output) for output in cell.get("outputs", [])]
            cell["outputs"] = [o for o in outputs if o.get("output_type") != "display_data" or o.get("data")]
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
    return notebook


def dumps(notebook: dict) -> str:
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def execute(path: Path) -> float:
    """Run one notebook top to bottom in a fresh kernel (working directory: its folder); return seconds taken."""
    import nbformat
    from nbclient import NotebookClient

    apply_kernel_env()
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    log = Path(tempfile.mkdtemp()) / "tolerances.jsonl"
    os.environ[TOLERANCE_LOG_ENV_VAR] = str(log)  # annotated.utils.with_tolerance logs each result it formats
    start = time.perf_counter()
    try:
        client.reset_execution_trackers()
        with client.setup_kernel():  # what client.execute() does, with the tolerance log read after each cell
            read = 0
            for index, cell in enumerate(notebook.cells):
                client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
                lines = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
                logged, read = [json.loads(line) for line in lines[read:]], len(lines)
                cell.metadata.pop(TOLERANCE_KEY, None)
                entries = locate(cell.get("outputs", []), logged) if logged else []
                twins = ambiguous(cell.get("outputs", []), entries)
                if twins:
                    raise ValueError(f"{path} cell {index}: a toleranced result's text is printed twice: {twins}")
                if entries:
                    cell.metadata[TOLERANCE_KEY] = entries
    finally:
        os.environ.pop(TOLERANCE_LOG_ENV_VAR, None)
        shutil.rmtree(log.parent, ignore_errors=True)
    seconds = time.perf_counter() - start
    # The kernel inherited this process's environment, so a fresh process with it dispatches to the same kernels.
    notebook.metadata[METADATA_KEY] = {RECORD_KEY: execution_record(torch_capability())}
    path.write_text(dumps(normalize_notebook(notebook)), encoding="utf-8")
    return seconds


def raises_on_purpose(cell: dict) -> bool:
    """A cell that demonstrates an error: tag ``raises-exception`` (nbclient and nbval) or nbval's comment marker."""
    first_line = cell_source(cell).lstrip().split("\n", 1)[0]
    return "raises-exception" in cell.get("metadata", {}).get("tags", []) or "NBVAL_RAISES_EXCEPTION" in first_line


def problems_in(path: Path) -> list[str]:
    """Why a stored notebook would not be what a fresh top-to-bottom run stores (empty when fine)."""
    text = path.read_text(encoding="utf-8")
    notebook = json.loads(text)
    problems = []
    if dumps(normalize_notebook(notebook)) != text:
        problems.append(f"{path}: not normalised; run `python -m tools.nbexec --normalize {path}`")
    try:
        stored_capability(notebook, str(path))
    except ValueError as missing:
        problems.append(str(missing))
    expected_count = 1
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code" or not cell_source(cell).strip():
            continue
        if cell.get("execution_count") != expected_count:
            problems.append(
                f"{path} cell {index}: execution count {cell.get('execution_count')}, expected {expected_count}; "
                f"re-run it top to bottom with `python -m tools.nbexec {path}`"
            )
            break
        expected_count += 1
        has_error = any(output.get("output_type") == "error" for output in cell.get("outputs", []))
        if has_error and not raises_on_purpose(cell):
            problems.append(f"{path} cell {index}: stored output is an error (tag it raises-exception if meant)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--all", action="store_true", help="all chapter notebooks (never drafts)")
    parser.add_argument("--check", action="store_true", help="check only; write nothing")
    parser.add_argument("--normalize", action="store_true", help="normalise metadata only; execute nothing")
    args = parser.parse_args(argv)
    paths = args.paths or (chapter_notebooks() if args.all or args.check else [])
    if not paths:
        parser.error("name notebooks, or pass --all")
    if args.check:
        problems = [problem for path in paths for problem in problems_in(path)]
        for problem in problems:
            print(problem, file=sys.stderr)
        if not problems:
            print(f"{len(paths)} notebook(s) executed in order and normalised")
        return 1 if problems else 0
    for path in paths:
        if args.normalize:
            path.write_text(dumps(normalize_notebook(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")
            print(f"normalised {path}")
        else:
            seconds = execute(path)
            print(f"executed {path} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
