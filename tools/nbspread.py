"""Measure how much the chapters' printed results move between machines and seeds.

A chapter's stored outputs were computed on one CPU; another instruction set (or GPU, or seed) gives slightly
different training results. This tool re-executes chapter notebooks into a separate folder under a chosen
variant, then lines up every number printed in every cell across the runs, so that each tolerance in a chapter can
be set from a measured spread rather than guessed.

Usage::

    python -m tools.nbspread run --out _build/spread/avx2 --isa avx2 notebooks/02_reformer.ipynb
    python -m tools.nbspread run --out _build/spread/seed1 --seed-offset 1 --all
    python -m tools.nbspread report notebooks/02_reformer.ipynb _build/spread/avx2 _build/spread/seed1
    python -m tools.nbspread margins notebooks/02_reformer.ipynb _build/spread/avx2 _build/spread/seed1

``--isa`` sets ``ATEN_CPU_CAPABILITY`` (and oneMKL's ``MKL_ENABLE_INSTRUCTIONS``) for the kernel, as
``tools.isa.CAPABILITY_ENV`` says.
``--seed-offset k`` adds ``k`` to every seed the notebook passes to ``annotated.utils.seed_everything``, through a
cell injected before the first one (the notebook itself is not changed); seeds a chapter draws elsewhere (data
generators, environments) stay as they are, so the spread it measures is that of initialisation and sampling.
A chapter whose training function takes its seed as an argument (``fine_tune(..., seed=0)`` in the warm-starting
chapter) ignores that; ``--shift-seed-of fine_tune`` also adds the offset to the ``seed`` argument of every later
call of that function, through a wrapper cell injected after the cell that defines it.
The stored notebooks are never written.

``report`` lines up every number that moved; ``margins`` looks only at the results a chapter prints as
``value ± tolerance`` and says, per result, the largest difference the runs showed and which share of the
tolerance it used (over 100% means that run would fail nbval; far under means the tolerance may be too loose).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from tools.isa import CAPABILITY_ENV, ISA_VARIABLES
from tools.kernel_env import apply_kernel_env
from tools.nbexec import dumps, normalize_notebook
from tools.nbexport import cell_source, chapter_notebooks
from tools.tolerance import TOLERANCED, toleranced_results

NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")

SEED_OFFSET_CELL = """\
import annotated.utils as _annotated_utils

_original_seed_everything = _annotated_utils.seed_everything


def _offset_seed_everything(seed, deterministic=True):
    return _original_seed_everything(seed + {offset}, deterministic)


_annotated_utils.seed_everything = _offset_seed_everything
"""

SEED_ARGUMENT_CELL = """\
_unshifted_{name} = {name}


def {name}(*args, seed=0, **kwargs):
    return _unshifted_{name}(*args, seed=seed + {offset}, **kwargs)
"""


def run_variant(path: Path, out_dir: Path, isa: str | None, seed_offset: int,
                shift_seed_of: tuple[str, ...] = ()) -> float:
    """Execute ``path`` in a fresh kernel under the variant; write the executed copy to ``out_dir``."""
    import nbformat
    from nbclient import NotebookClient

    apply_kernel_env()
    for name in ISA_VARIABLES:
        os.environ.pop(name, None)
    if isa is not None:
        os.environ.update(CAPABILITY_ENV[isa])
    notebook = nbformat.read(path, as_version=4)
    injected = []
    for name in shift_seed_of if seed_offset else ():
        definition = next((index for index, cell in enumerate(notebook.cells)
                           if cell.cell_type == "code" and f"def {name}(" in cell.source), None)
        if definition is None:
            raise ValueError(f"--shift-seed-of {name}: no code cell of {path} defines {name}()")
        cell = nbformat.v4.new_code_cell(SEED_ARGUMENT_CELL.format(name=name, offset=seed_offset))
        notebook.cells.insert(definition + 1, cell)
        injected.append(cell)
    if seed_offset:
        cell = nbformat.v4.new_code_cell(SEED_OFFSET_CELL.format(offset=seed_offset))
        notebook.cells.insert(0, cell)
        injected.append(cell)
    client = NotebookClient(notebook, timeout=1800, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    injected_ids = {cell.id for cell in injected}
    notebook.cells = [cell for cell in notebook.cells if cell.get("id") not in injected_ids]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / path.name).write_text(dumps(normalize_notebook(notebook)), encoding="utf-8")
    return seconds


def cell_text(cell: dict) -> str:
    """The text nbval compares: streams and text/plain results, concatenated."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", ""))
        elif output.get("output_type") == "error":
            parts.append(f"ERROR {output.get('ename')}: {output.get('evalue')}")
    return "".join("".join(part) if isinstance(part, list) else part for part in parts)


def run_cells(path: Path, base: list[dict]) -> list[dict]:
    """The cells of the executed copy ``path`` lined up with ``base``: by cell id, so that a cell added to or removed
    from the stored notebook after the run does not shift the rest (an empty cell where the run has no such id)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    by_id = {cell.get("id"): cell for cell in cells}
    if all(cell.get("id") for cell in base):
        return [by_id.get(cell["id"], {"cell_type": cell["cell_type"], "outputs": []}) for cell in base]
    return cells


def report(stored: Path, runs: list[Path]) -> list[str]:
    """Per code cell whose text differs in some run: the stored text and, per number, the values seen."""
    base = json.loads(stored.read_text(encoding="utf-8"))["cells"]
    others = [run_cells(run / stored.name, base) for run in runs]
    lines = []
    for index, cell in enumerate(base):
        if cell["cell_type"] != "code":
            continue
        texts = [cell_text(cell)] + [cell_text(other[index]) for other in others]
        if all(text == texts[0] for text in texts):
            continue
        first_line = cell_source(cell).strip().split("\n", 1)[0][:80]
        lines.append(f"## {stored.name} cell {index} (id {cell.get('id')}): {first_line}")
        numbers = [NUMBER.findall(text) for text in texts]
        skeletons = [NUMBER.sub("#", text) for text in texts]
        if all(s == skeletons[0] for s in skeletons):
            for position, values in enumerate(zip(*numbers)):
                if len(set(values)) > 1:
                    floats = [float(v) for v in values]
                    context = skeletons[0].split("#")[position][-40:].replace("\n", " ")
                    lines.append(f"  ...{context!r} {values[0]}: seen {', '.join(values[1:])}; "
                                 f"spread {max(floats) - min(floats):.4g}")
        else:
            for run, text in zip(["stored"] + [str(r) for r in runs], texts):
                lines.append(f"  [{run}] " + text[:600].replace("\n", "\n    "))
    return lines


def margins(stored: Path, runs: list[Path]) -> list[str]:
    """Per toleranced result of ``stored``: the values the runs printed and the share of the tolerance used."""
    base = json.loads(stored.read_text(encoding="utf-8"))["cells"]
    others = [run_cells(run / stored.name, base) for run in runs]
    lines = []
    for index, cell in enumerate(base):
        stored_text = cell_text(cell) if cell["cell_type"] == "code" else ""
        results = toleranced_results(stored_text)
        if not results:
            continue
        seen_per_run = [[float(m["value"]) for m in TOLERANCED.finditer(cell_text(other[index]))] for other in others]
        for position, result in enumerate(results):
            seen = [values[position] for values in seen_per_run if len(values) == len(results)]
            if len(seen) < len(runs):
                lines.append(f"cell {index} {result.text}: a run printed a different set of results")
            worst = max((abs(value - result.value) for value in seen), default=0.0)
            used = worst / result.allowed() if result.allowed() else float("inf")
            flag = "  OUTSIDE" if used > 1 + 1e-9 else ""
            values = ", ".join(f"{value:g}" for value in seen)
            lines.append(f"cell {index:3d}  {result.text:<22} seen {values:<40} |diff| {worst:<9.3g} "
                         f"{used:6.0%} of tolerance{flag}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute notebooks under a variant into --out")
    run.add_argument("paths", nargs="*", type=Path)
    run.add_argument("--all", action="store_true")
    run.add_argument("--out", type=Path, required=True)
    run.add_argument("--isa", choices=sorted(CAPABILITY_ENV))
    run.add_argument("--seed-offset", type=int, default=0)
    run.add_argument("--shift-seed-of", action="append", default=[], metavar="FUNCTION",
                     help="with --seed-offset: also add the offset to the seed argument of calls of FUNCTION")
    show = commands.add_parser("report", help="compare a stored notebook with executed copies")
    show.add_argument("stored", type=Path)
    show.add_argument("runs", nargs="+", type=Path)
    used = commands.add_parser("margins", help="share of each stated tolerance the runs used")
    used.add_argument("stored", type=Path)
    used.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        paths = args.paths or (chapter_notebooks() if args.all else [])
        if not paths:
            parser.error("name notebooks, or pass --all")
        if args.shift_seed_of and not args.seed_offset:
            parser.error("--shift-seed-of needs a non-zero --seed-offset")
        for path in paths:
            seconds = run_variant(path, args.out, args.isa, args.seed_offset, tuple(args.shift_seed_of))
            print(f"{path} -> {args.out / path.name}: {seconds:.0f} s", flush=True)
        return 0
    lines = report(args.stored, args.runs) if args.command == "report" else margins(args.stored, args.runs)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
