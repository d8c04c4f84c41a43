"""Measure how much the chapters' printed results move between machines and seeds.

A chapter's stored outputs were computed on one CPU; another instruction set (or GPU, or seed) gives slightly
different training results. This tool re-executes chapter notebooks into a separate folder under a chosen
variant, then lines up every number printed in every cell across the runs, so that each tolerance in a chapter can
be set from a measured spread rather than guessed.

Usage::

    python -m tools.nbspread run --out _build/spread/avx2 --isa avx2 notebooks/02_reformer.ipynb
    python -m tools.nbspread run --out _build/spread/seed1 --seed-offset 1 --all
    python -m tools.nbspread run --out _build/spread/draws --sampling-draws 20 --all
    python -m tools.nbspread summary _build/spread/seed1 _build/spread/draws
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
Training functions that take their seed as an argument are listed per chapter in ``SEED_ARGUMENT_FUNCTIONS`` and
shifted the same way with every ``--seed-offset``. Training functions that take it inside a dataclass configuration
(``train_ppo(env_id, config)``) are listed in ``SEED_CONFIG_FUNCTIONS``: each call trains on a copy of its
configuration with the seed moved (``dataclasses.replace``), so the configuration classes stay what they are and a
configuration saved, copied or loaded again is never shifted twice.
The stored notebooks are never written.

Every run writes, beside each executed copy, ``<chapter>.json``: the cells that raised (an assertion that fails
under some seed is wrong, whatever machine stored the outputs) and the sampling sweeps; ``run`` exits 1 when a cell
raised, and ``summary`` tabulates the records of several runs. ``--sampling-draws N`` runs each sampling assertion
of ``SAMPLING_SWEEPS`` under N sampling seeds (every literal ``manual_seed(k)`` and ``seed=k`` of its cells moved by
1 .. N-1, then the cells themselves), each draw from the same random state, recording whether it raised and the
values it asserts on, so that a threshold is set from the distribution of what it bounds. The rest of the notebook
then computes exactly what a plain run computes.

Every run also records each ``annotated.utils.expect`` call the notebook made (its cell, what it bounds, the
value, the bound) in the ``expectations`` of ``<chapter>.json``; ``tools.margins`` turns the records of several runs
into each assertion's measured margin.

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
from tools.nbexec import dumps, normalize_notebook, raises_on_purpose
from tools.nbexport import cell_source, chapter_notebooks
from tools.tolerance import METADATA_KEY as TOLERANCE_KEY
from tools.tolerance import NUMBER_PATTERN as NUMBER
from tools.tolerance import TOLERANCED, allowed_difference, channel_texts, toleranced_results


EXPECT_LOG_ENV_VAR = "ANNOTATED_EXPECT_LOG"  # annotated.utils.EXPECT_LOG_ENV_VAR (the tools do not import torch)

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


SEED_CONFIG_CELL = """\
import dataclasses as _spread_dataclasses
import inspect as _spread_inspect

_unshifted_{name} = {name}


def {name}(*args, **kwargs):
    bound = _spread_inspect.signature(_unshifted_{name}).bind(*args, **kwargs)
    bound.apply_defaults()
    config = bound.arguments["config"]
    bound.arguments["config"] = _spread_dataclasses.replace(config, seed=config.seed + {offset})
    return _unshifted_{name}(*bound.args, **bound.kwargs)
"""

# Training functions that take their seed inside a dataclass ``config`` argument, per notebook: with
# ``--seed-offset`` every call made after the cell that defines them trains with ``config.seed`` moved by the offset.
SEED_CONFIG_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "07_policy_gradients_ppo.ipynb": ("train_dqn", "reinforce", "train_ppo"),
}

# Training functions that take their seed as an argument, per notebook: with ``--seed-offset``
# the offset is added to the ``seed`` argument of every call made after the cell that defines them, as with
# ``--shift-seed-of`` (seeds passed to ``seed_everything`` are shifted in every notebook).
SEED_ARGUMENT_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "04_warm_starting.ipynb": ("fine_tune",),
    "06_q_learning.ipynb": ("train", "monte_carlo_prediction", "td0_prediction"),
}

# The sampling assertions of the chapters, swept by ``run --sampling-draws N``: per notebook, a list of sweeps. A sweep
# names the cells that make one draw, in notebook order (the cells that sample, then the cell that asserts), and the
# expressions (over the kernel's variables after the last cell) recorded per draw, so that each threshold can be set
# from the measured distribution of what it bounds.
SAMPLING_SWEEPS: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "01_ddpm.ipynb": [(("c44c753e", "03155c6b", "002d1312", "e1938d70"), (
        "DDPM confident/real: reports['trained (EMA), DDPM 300']['confident'] / real['confident']",
        "DDIM100 confident/real: reports['trained (EMA), DDIM 100']['confident'] / real['confident']",
        "DDIM50 confident/real: reports['trained (EMA), DDIM 50']['confident'] / real['confident']",
        "worst imbalance: max(reports[n]['imbalance'] for n in ['trained (EMA), DDPM 300', 'trained (EMA), DDIM 100', 'trained (EMA), DDIM 50'])",
        "worst MMD/noise: max(reports[n]['mmd'] for n in ['trained (EMA), DDPM 300', 'trained (EMA), DDIM 100', 'trained (EMA), DDIM 50']) / noise_report['mmd']",
        "untrained confident/real: untrained_report['confident'] / real['confident']",
        "untrained MMD/noise: untrained_report['mmd'] / noise_report['mmd']"))],
    "02_reformer.ipynb": [(("fa2d935c",), ("printable_share", "code_shaped_share"))],
    "05_wav2vec2.ipynb": [(("47299793",), ("masked_share",))],
    "03_encoder_decoder.ipynb": [
        (("af4feb4c",), ("cool_agreement", "hot_agreement")),
        (("d3c009c0",), (
            "max(reports[n]['repeated 4-grams'] for n in sampled)",
            "max(reports[n]['ends in a loop'] for n in sampled)",
            "min(reports[n]['distinct-2'] for n in sampled) / reports['greedy']['distinct-2']",
            "max(reports[n]['log p per word'] for n in sampled) - reports['greedy']['log p per word']",
            "reports['top-p 0.92']['log p per word'] - reports['sampling, T=1']['log p per word']",
            "reports['sampling, T=0.7']['log p per word'] - reports['top-p 0.92']['log p per word']")),
        (("d3c011c0",), (
            "min(b['distinct-2'] - a['distinct-2'] for r in (by_temperature, by_k, by_p) for a, b in zip(r, r[1:]))",
            "min(a['log p per word'] - b['log p per word'] for r in (by_temperature, by_k, by_p) for a, b in zip(r, r[1:]))",
            "min(r[0]['repeated 4-grams'] - 3 * r[-1]['repeated 4-grams'] for r in (by_temperature, by_k, by_p))")),
    ],
    "07_policy_gradients_ppo.ipynb": [(("831107d6",), ("fresh_mean", "untrained_median", "untrained_means.max()", "long_episode_share"))],
}

# Sampling seeds only: ``seed_everything`` seeds training and is shifted by ``--seed-offset`` instead.
SEED_LITERAL = re.compile(r"(?P<call>\bmanual_seed\(\s*|\bseed\s*=\s*)(?P<seed>\d[\d_]*)")

SAVE_RANDOM_STATE = """\
import random as _sweep_random, numpy as _sweep_numpy, torch as _sweep_torch
_sweep_state = (_sweep_random.getstate(), _sweep_numpy.random.get_state(), _sweep_torch.get_rng_state())
"""

RESTORE_RANDOM_STATE = """\
_sweep_random.setstate(_sweep_state[0]); _sweep_numpy.random.set_state(_sweep_state[1])
_sweep_torch.set_rng_state(_sweep_state[2])
"""

MEASURE = """\
import json as _sweep_json
_sweep_values = {{}}
for _sweep_name, _sweep_expression in {names!r}:
    try:
        _sweep_values[_sweep_name] = float(eval(_sweep_expression))
    except Exception as _sweep_error:
        _sweep_values[_sweep_name] = None
print(_sweep_json.dumps(_sweep_values))
"""


def shift_sampling_seeds(source: str, shift: int) -> str:
    """``source`` with every literal seed of a random draw moved by ``shift``: ``manual_seed(N)`` and ``seed=N``
    become ``N + shift``."""
    return SEED_LITERAL.sub(lambda m: f"{m.group('call')}{m.group('seed')} + {shift}", source)


def measure_label(measure: str) -> tuple[str, str]:
    """``"label: expression"`` (or a bare expression, its own label) as ``(label, expression)``."""
    label, separator, expression = measure.partition(": ")
    return (label, expression) if separator else (measure, measure)


def _cell_error(cell: dict) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            lines = [line for line in str(output.get("evalue", "")).splitlines() if line.strip()]
            return f"{output.get('ename')}: {lines[0][:200] if lines else ''}".rstrip(": ")
    return None


def _run_snippet(client, source: str, index: int) -> dict:
    """Execute ``source`` in the kernel as a throwaway cell (nbclient puts it at ``index``: the caller restores)."""
    import nbformat

    cell = nbformat.v4.new_code_cell(source)
    client.execute_cell(cell, index, store_history=False)
    return cell


def sweep(client, cells: list, index: int, measures: tuple[str, ...], draws: int) -> list[dict]:
    """Run the draw made by ``cells`` (the sampling cells, then the asserting cell, which is notebook cell ``index``)
    under ``draws`` sampling seeds: shifts 1 .. draws-1 on copies, each from the same random state, then shift 0,
    the cells themselves, so that the kernel goes on exactly as in a plain run (the earlier cells are re-run on
    copies, which keeps the outputs of their first run). Per draw: the error, if a cell raised, and the value of
    each expression in ``measures``."""
    import nbformat

    if not any(SEED_LITERAL.search(cell_source(cell)) for cell in cells):
        raise ValueError(f"sweep ending in cell {index}: no cell draws with a literal seed (manual_seed(N), seed=N)")
    _run_snippet(client, SAVE_RANDOM_STATE, index)
    results = []
    for shift in [*range(1, draws), 0]:
        _run_snippet(client, RESTORE_RANDOM_STATE, index)
        errors = []
        for position, cell in enumerate(cells):
            last = position == len(cells) - 1
            run = cell if shift == 0 and last else nbformat.v4.new_code_cell(shift_sampling_seeds(cell_source(cell), shift))
            client.execute_cell(run, index, store_history=shift == 0 and last)
            errors.append(_cell_error(run))
        measured = cell_text(_run_snippet(client, MEASURE.format(names=[measure_label(m) for m in measures]), index)).strip()
        values = json.loads(measured.splitlines()[-1]) if measured.startswith("{") else {}
        results.append({"sampling_seed_shift": shift, "raised": next((e for e in errors if e), None),
                         "measures": values})
    client.nb.cells[index] = cells[-1]  # nbclient stores each executed cell at its index; put the real one back
    return results


def _read_new_lines(log: Path, seen: list) -> list[dict]:
    """The records of ``log`` after the first ``len(seen)`` (each cell's ``expect`` calls, as the cell ends)."""
    if not log.is_file():
        return []
    lines = log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[len(seen):] if line.strip()]


def run_variant(path: Path, out_dir: Path, isa: str | None, seed_offset: int,
                shift_seed_of: tuple[str, ...] = (), sampling_draws: int = 0) -> float:
    """Execute ``path`` in a fresh kernel under the variant; write the executed copy to ``out_dir`` and, beside it,
    ``<name>.json``: the cells that raised and, with ``sampling_draws > 1``, every sampling sweep of
    ``SAMPLING_SWEEPS`` for this notebook (see ``sweep``)."""
    import nbformat
    from nbclient import NotebookClient

    apply_kernel_env()
    for name in ISA_VARIABLES:
        os.environ.pop(name, None)
    if isa is not None:
        os.environ.update(CAPABILITY_ENV[isa])
    notebook = nbformat.read(path, as_version=4)
    injected = []
    functions = {**dict.fromkeys([*SEED_ARGUMENT_FUNCTIONS.get(path.name, ()), *shift_seed_of], SEED_ARGUMENT_CELL),
                 **dict.fromkeys(SEED_CONFIG_FUNCTIONS.get(path.name, ()), SEED_CONFIG_CELL)}
    for name, template in functions.items() if seed_offset else ():
        defines = re.compile(rf"^def {re.escape(name)}\b", re.MULTILINE)
        definition = next((index for index, cell in enumerate(notebook.cells)
                           if cell.cell_type == "code" and defines.search(cell.source)), None)
        if definition is None:
            raise ValueError(f"--shift-seed-of {name}: no code cell of {path} defines {name}()")
        cell = nbformat.v4.new_code_cell(template.format(name=name, offset=seed_offset))
        notebook.cells.insert(definition + 1, cell)
        injected.append(cell)
    if seed_offset:
        cell = nbformat.v4.new_code_cell(SEED_OFFSET_CELL.format(offset=seed_offset))
        notebook.cells.insert(0, cell)
        injected.append(cell)
    by_id = {cell.get("id"): cell for cell in notebook.cells}
    sweeps = {ids[-1]: (ids, measures) for ids, measures in SAMPLING_SWEEPS.get(path.name, [])}
    missing = {cell_id for ids, _ in sweeps.values() for cell_id in ids} - set(by_id) if sampling_draws > 1 else set()
    if missing:
        raise ValueError(f"SAMPLING_SWEEPS names cells that {path} does not have: {sorted(missing)}")
    client = NotebookClient(notebook, timeout=1800, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    swept: dict[str, list[dict]] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    expect_log = (out_dir / f"{path.stem}.expect.jsonl").resolve()
    expect_log.unlink(missing_ok=True)
    os.environ[EXPECT_LOG_ENV_VAR] = str(expect_log)  # annotated.utils.expect appends one line per call
    expectations: list[dict] = []
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if sampling_draws > 1 and cell.get("id") in sweeps:
                ids, measures = sweeps[cell.id]
                swept["+".join(ids)] = sweep(client, [by_id[i] for i in ids], index, measures, sampling_draws)
            else:
                client.execute_cell(cell, index)
            expectations += [{"id": cell.get("id"), **record} for record in _read_new_lines(expect_log, expectations)]
    os.environ.pop(EXPECT_LOG_ENV_VAR)
    seconds = time.perf_counter() - start
    injected_ids = {cell.id for cell in injected}
    notebook.cells = [cell for cell in notebook.cells if cell.get("id") not in injected_ids]
    raised = [{"cell": index, "id": cell.get("id"), "error": _cell_error(cell)}
              for index, cell in enumerate(notebook.cells)
              if cell.cell_type == "code" and _cell_error(cell) and not raises_on_purpose(cell)]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / path.name).write_text(dumps(normalize_notebook(notebook)), encoding="utf-8")
    summary = {"notebook": path.name, "isa": isa, "seed_offset": seed_offset, "seconds": round(seconds),
               "raised": raised, "sampling_sweeps": swept, "expectations": expectations}
    (out_dir / f"{path.stem}.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
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
        if cell.get("metadata", {}).get(TOLERANCE_KEY):
            lines += metadata_margins(index, cell, [other[index] for other in others])
            continue
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


def without_printed_tolerances(text: str) -> str:
    """``text`` with every printed `` ± tolerance`` dropped, so that runs made before a chapter moved to
    ``with_tolerance`` number their results as the moved chapter does."""
    return TOLERANCED.sub(lambda match: match["value"], text)


def metadata_rows(index: int, cell: dict, runs: list[dict]) -> list[dict]:
    """Per number a cell's metadata tolerates (``with_tolerance``): the stored value, its tolerance and the values
    printed at the same place by each run."""
    stored = channel_texts(cell.get("outputs", []))
    seen_texts = [{channel: without_printed_tolerances(text) for channel, text in channel_texts(run.get("outputs", [])).items()}
                  for run in runs]
    rows = []
    for entry in cell["metadata"][TOLERANCE_KEY]:
        text = stored.get(entry["channel"], "")
        match = list(NUMBER.finditer(text))[entry["number"]]
        seen = []
        for texts in seen_texts:
            numbers = NUMBER.findall(texts.get(entry["channel"], ""))
            if entry["number"] < len(numbers):
                seen.append(float(numbers[entry["number"]]))
        allowed = allowed_difference(float(match.group()), entry["tolerance"], entry["relative"])
        rows.append({"cell_index": index, "cell": cell.get("id"), "channel": entry["channel"], "number": entry["number"],
                     "context": " ".join(text[:match.start()].split())[-60:], "stored": match.group(),
                     "tolerance": entry["tolerance"], "relative": entry["relative"], "allowed": allowed,
                     "runs": len(runs), "seen": seen,
                     "largest_difference": max((abs(v - float(match.group())) for v in seen), default=None)})
    return rows


def metadata_margins(index: int, cell: dict, runs: list[dict]) -> list[str]:
    """``margins`` lines for a cell whose tolerances are in its metadata."""
    lines = []
    for row in metadata_rows(index, cell, runs):
        label = f"{row['stored']} ± {row['tolerance']:g}{'%' if row['relative'] else ''}"
        if len(row["seen"]) < row["runs"]:
            lines.append(f"cell {index} {label}: a run printed fewer numbers there")
        worst = row["largest_difference"] or 0.0
        used = worst / row["allowed"] if row["allowed"] else float("inf")
        flag = "  OUTSIDE" if used > 1 + 1e-9 else ""
        values = ", ".join(f"{value:g}" for value in row["seen"])
        lines.append(f"cell {index:3d}  {label:<22} seen {values:<40} |diff| {worst:<9.3g} {used:6.0%} of tolerance{flag}")
    return lines


TOLERANCES_JSON = Path(__file__).resolve().parent.parent / "results" / "portability" / "tolerances.json"


def write_tolerance_record(stored: Path, runs: list[Path], record: Path = TOLERANCES_JSON) -> list[dict]:
    """Replace ``stored``'s rows of the committed record of tolerances (what each was set from) with these runs'."""
    base = json.loads(stored.read_text(encoding="utf-8"))["cells"]
    others = [run_cells(run / stored.name, base) for run in runs]
    rows = [{"notebook": stored.name, **row, "run_folders": [run.as_posix() for run in runs]}
            for index, cell in enumerate(base) if cell.get("metadata", {}).get(TOLERANCE_KEY)
            for row in metadata_rows(index, cell, [other[index] for other in others])]
    kept = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else []
    merged = [row for row in kept if row["notebook"] != stored.name] + rows
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(merged, indent=1) + "\n", encoding="utf-8")
    return rows


def summary(runs: list[Path]) -> list[str]:
    """The ``<name>.json`` records of ``run``: per run folder and notebook, the cells that raised; then per sampling
    sweep, how many draws raised and the range of every measured value."""
    records = {run: sorted(run.glob("*.json")) for run in runs}
    lines = ["| run | notebook | seconds | cells that raised |", "|---|---|---:|---|"]
    for run, paths in records.items():
        if not paths:
            lines.append(f"| {run} | (no record: was it made by `nbspread run`?) | | |")
        for record_path in paths:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            raised = "; ".join(f"cell {r['cell']} ({r['id']}): {r['error']}" for r in record["raised"]) or "none"
            lines.append(f"| {run} | {record['notebook']} | {record['seconds']} | {raised} |")
    # records written before a measure had a label carry its expression
    labels = {measure_label(m)[1]: measure_label(m)[0]
              for sweeps in SAMPLING_SWEEPS.values() for _, measures in sweeps for m in measures}
    sweep_lines = []
    for run, paths in records.items():
        for record_path in paths:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            for cell_id, draws in record.get("sampling_sweeps", {}).items():
                failed = [d["sampling_seed_shift"] for d in draws if d["raised"]]
                ranges = []
                for name in draws[0]["measures"] if draws else []:
                    values = sorted(d["measures"][name] for d in draws if d["measures"].get(name) is not None)
                    if values:
                        ranges.append(f"{labels.get(name, name)} {values[0]:.4g} .. {values[len(values) // 2]:.4g}"
                                      f" .. {values[-1]:.4g}")
                sweep_lines.append(f"| {run} | {record['notebook']} {cell_id} | {len(draws) - len(failed)}/{len(draws)}"
                                   f"{' (raised at shifts ' + str(failed) + ')' if failed else ''} | "
                                   f"{'; '.join(ranges)} |")
    if sweep_lines:
        lines += ["", "| run | sampling cell | draws passed | measured (min .. median .. max) |", "|---|---|---|---|"]
        lines += sweep_lines
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
    run.add_argument("--sampling-draws", type=int, default=0, metavar="N",
                     help="run each cell of SAMPLING_SWEEPS under N sampling seeds and record its measures")
    show = commands.add_parser("report", help="compare a stored notebook with executed copies")
    show.add_argument("stored", type=Path)
    show.add_argument("runs", nargs="+", type=Path)
    used = commands.add_parser("margins", help="share of each stated tolerance the runs used")
    used.add_argument("stored", type=Path)
    used.add_argument("runs", nargs="+", type=Path)
    used.add_argument("--write", action="store_true",
                      help=f"also record what each tolerance was set from in {TOLERANCES_JSON.name}")
    tally = commands.add_parser("summary", help="which cells raised in each run, and the sampling sweeps")
    tally.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "summary":
        print("\n".join(summary(args.runs)))
        return 0
    if args.command == "run":
        paths = args.paths or (chapter_notebooks() if args.all else [])
        if not paths:
            parser.error("name notebooks, or pass --all")
        if args.shift_seed_of and not args.seed_offset:
            parser.error("--shift-seed-of needs a non-zero --seed-offset")
        any_raised = False
        for path in paths:
            seconds = run_variant(path, args.out, args.isa, args.seed_offset, tuple(args.shift_seed_of),
                                  args.sampling_draws)
            raised = json.loads((args.out / f"{path.stem}.json").read_text(encoding="utf-8"))["raised"]
            any_raised = any_raised or bool(raised)
            cells = ", ".join(f"cell {r['cell']} ({r['id']}): {r['error']}" for r in raised) or "no cell raised"
            print(f"{path} -> {args.out / path.name}: {seconds:.0f} s; {cells}", flush=True)
        return 1 if any_raised else 0
    lines = report(args.stored, args.runs) if args.command == "report" else margins(args.stored, args.runs)
    print("\n".join(lines))
    if args.command == "margins" and args.write:
        rows = write_tolerance_record(args.stored, args.runs)
        print(f"{len(rows)} toleranced result(s) of {args.stored.name} recorded in {TOLERANCES_JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
