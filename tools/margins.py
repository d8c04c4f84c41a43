"""How close each assertion on a trained or sampled quantity came to failing over measured runs, and the rule it must meet.

The chapters state such assertions with ``annotated.utils.expect(value, "<", bound, "what")``; ``python -m
tools.nbspread run`` records every call of every run (other training seeds with ``--seed-offset K``, other sampling
seeds with ``--sampling-draws N``, other instruction sets with ``--isa``). This tool lines the records up per
assertion (notebook, cell, ``what``) and applies the **margin rule**: over all measured values, the one closest to
the bound must stay inside it by at least

    max(3 x the standard deviation of the measured values, 25% of the distance from the reference value to the bound)

where the reference is the value of the plain run (seed offset 0, the machine's own instruction set) when one was
measured, else the median. A bound that fails the rule is too close to call in a chapter: state a weaker property
that holds with margin, or decide the finding in a committed multi-seed run that the chapter reads.

    python -m tools.margins _build/spread/seed0 _build/spread/seed1 _build/spread/seed2 _build/spread/seed3
    python -m tools.margins ... --write     # merge into results/portability/margins.json and margins.md

A bound loosened after the runs (``--weaken "what=bound"``) is judged on the same measured values: every run passed
the stricter bound, so with the looser one each run would have computed exactly the same (``expect`` has no other
effect than raising); tightening a bound needs new runs. Such a row keeps the bound it was measured with. An
assertion removed from the chapter after the runs (``--drop what``, when no bound on the quantity keeps the margin)
gets no row, so the record lists only what the chapters assert.

``--write`` replaces the records of the notebooks the given runs cover and keeps the others, so chapters can be
measured one at a time. ``tests/test_margins.py`` fails when a chapter calls ``expect`` for a quantity that has no
record there, or whose record breaks the rule.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parent.parent
MARGINS_JSON = REPO_ROOT / "results" / "portability" / "margins.json"
MARGINS_MD = REPO_ROOT / "results" / "portability" / "margins.md"
SD_FACTOR, REFERENCE_SHARE = 3.0, 0.25


def inside(value: float, comparison: str, bound: float) -> float:
    """How far ``value`` lies inside its bound (negative: outside)."""
    return bound - value if comparison in ("<", "<=") else value - bound


def verdict(values: list[float], comparison: str, bound: float, reference: float) -> dict:
    """The margin rule over ``values``: the closest value, the spread, what the rule needs and whether it holds."""
    if not values:
        raise ValueError("no measured value")
    closest = min(inside(value, comparison, bound) for value in values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    needed = max(SD_FACTOR * spread, REFERENCE_SHARE * inside(reference, comparison, bound))
    return {"runs": len(values), "reference": reference, "min": min(values), "max": max(values), "sd": spread,
            "closest_inside": closest, "needed": needed, "holds": closest > 0 and closest >= needed}


def collect(runs: list[Path]) -> dict[tuple[str, str, str, str], dict]:
    """Every ``expect`` record of the ``nbspread`` runs, grouped by (notebook, cell id, what, comparison): a quantity
    bounded on both sides is two assertions."""
    grouped: dict[tuple[str, str, str], dict] = defaultdict(lambda: {"values": [], "plain": [], "runs": set()})
    for run in runs:
        records = sorted(run.glob("*.json"))
        if not records:
            raise ValueError(f"{run} holds no nbspread record (<chapter>.json)")
        for path in records:
            record = json.loads(path.read_text(encoding="utf-8"))
            plain = record.get("seed_offset", 0) == 0 and record.get("isa") is None
            for call in record.get("expectations", []):
                entry = grouped[record["notebook"], call["id"], call["what"], call["comparison"]]
                if entry.setdefault("bound", call["bound"]) != call["bound"]:
                    raise ValueError(f"{record['notebook']} {call['what']!r}: the bound differs between runs")
                entry["values"].append(call["value"])
                entry["runs"].add(str(run))
                if plain:
                    entry["plain"].append(call["value"])
    return grouped


def weakened(comparison: str, measured: float, new: float) -> bool:
    """Whether ``new`` is at least as loose a bound as ``measured`` for ``comparison``."""
    return new >= measured if comparison in ("<", "<=") else new <= measured


def on_log_scale(collected: dict, whats: list[str]) -> dict:
    """``collected`` with each assertion named in ``whats`` replaced by its log10 twin, ``"log10 of <what>"``: the
    log of every recorded value against the log of the bound. A positive quantity that spreads over a factor of several
    between seeds (a variance ratio) is judged on the scale on which its spread is even; the runs computed exactly
    these values, so no new run is needed, and the chapter asserts ``expect(math.log10(x), ...)`` under the new name."""
    missing = sorted(set(whats) - {key[2] for key in collected})
    if missing:
        raise ValueError(f"--log10 names assertions no run recorded: {missing}")
    result = {}
    for (notebook, cell_id, what, comparison), entry in collected.items():
        if what not in whats:
            result[notebook, cell_id, what, comparison] = entry
            continue
        if min(entry["values"]) <= 0 or entry["bound"] <= 0:
            raise ValueError(f"{what!r}: --log10 needs positive values and bound")
        result[notebook, cell_id, f"log10 of {what}", comparison] = {
            **entry, "bound": math.log10(entry["bound"]), "values": [math.log10(v) for v in entry["values"]],
            "plain": [math.log10(v) for v in entry["plain"]]}
    return result


def measure(runs: list[Path], weaken: dict[str, float] | None = None, log10: list[str] | None = None,
            drop: list[str] | None = None) -> list[dict]:
    """One row per assertion: where, what, the bound, the rule's verdict over the runs. ``weaken`` maps a ``what``
    to a looser bound than the runs were made with (refused if it is tighter); ``log10`` names assertions to judge on
    a log scale (``on_log_scale``), which ``weaken`` may then loosen under their new names; ``drop`` names
    assertions the chapter no longer makes, left out."""
    collected, dropped = on_log_scale(collect(runs), list(log10 or [])), set(drop or [])
    unknown = sorted(dropped - {key[2] for key in collected} - {f"{key[1]}:{key[2]}" for key in collected})
    if unknown:
        raise ValueError(f"--drop names assertions no run recorded: {unknown}")
    collected = {key: entry for key, entry in collected.items()
                 if key[2] not in dropped and f"{key[1]}:{key[2]}" not in dropped}
    rows, weaken = [], dict(weaken or {})
    two_sided = sorted({what for (_, _, what, _) in collected if what in weaken and
                        sum(key[2] == what for key in collected) > 1})
    if two_sided:
        raise ValueError(f"--weaken names quantities bounded on both sides, which it cannot tell apart: {two_sided}")
    for (notebook, cell_id, what, comparison), entry in sorted(collected.items()):
        extra, entry["comparison"] = {}, comparison
        if what in weaken:
            new = weaken.pop(what)
            if not weakened(comparison, entry["bound"], new):
                raise ValueError(f"{what!r}: {entry['comparison']} {new} is tighter than the measured bound "
                                 f"{entry['bound']}; tightening a bound needs new runs")
            extra, entry["bound"] = {"measured_with_bound": entry["bound"]}, new
        values = entry["values"]
        reference = min(entry["plain"], key=lambda v: inside(v, entry["comparison"], entry["bound"])) \
            if entry["plain"] else statistics.median(values)
        rows.append({"notebook": notebook, "cell": cell_id, "what": what, "comparison": entry["comparison"],
                     "bound": entry["bound"], "run_folders": len(entry["runs"]), **extra,
                     **verdict(values, entry["comparison"], entry["bound"], reference)})
    if weaken:
        raise ValueError(f"--weaken names assertions no run recorded: {sorted(weaken)}")
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["# Measured margins of the chapters' assertions", "",
             "Made by `python -m tools.margins <nbspread run folders> --write` (rule in `tools/margins.py`: the closest",
             f"value stays inside its bound by at least max({SD_FACTOR:g} sd, {REFERENCE_SHARE:.0%} of the reference's "
             "distance)).", "",
             "| notebook | cell | assertion | bound | runs | reference | closest value | sd | inside by | needed | holds |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        closest = row["max"] if row["comparison"] in ("<", "<=") else row["min"]
        loosened = f" (runs made with {row['measured_with_bound']:.4g})" if "measured_with_bound" in row else ""
        lines.append(f"| {row['notebook']} | {row['cell']} | {row['what']} | {row['comparison']} {row['bound']:.4g}{loosened} | "
                     f"{row['runs']} | {row['reference']:.4g} | {closest:.4g} | {row['sd']:.3g} | "
                     f"{row['closest_inside']:.3g} | {row['needed']:.3g} | {'yes' if row['holds'] else '**no**'} |")
    return "\n".join(lines) + "\n"


def write(rows: list[dict], json_path: Path = MARGINS_JSON, md_path: Path = MARGINS_MD) -> list[dict]:
    """Merge ``rows`` into the committed record: the notebooks they cover are replaced, the others kept."""
    kept = json.loads(json_path.read_text(encoding="utf-8")) if json_path.is_file() else []
    covered = {row["notebook"] for row in rows}
    merged = sorted([row for row in kept if row["notebook"] not in covered] + rows,
                    key=lambda row: (row["notebook"], row["cell"], row["what"], row["comparison"]))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(merged, indent=1) + "\n", encoding="utf-8")
    md_path.write_text(markdown(merged), encoding="utf-8")
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="folders written by `python -m tools.nbspread run`")
    parser.add_argument("--write", action="store_true", help=f"merge into {MARGINS_JSON.relative_to(REPO_ROOT)}")
    parser.add_argument("--weaken", action="append", default=[], metavar="WHAT=BOUND",
                        help="judge WHAT against a looser bound than the runs were made with")
    parser.add_argument("--log10", action="append", default=[], metavar="WHAT",
                        help="judge the log10 of WHAT's values, as 'log10 of WHAT'")
    parser.add_argument("--drop", action="append", default=[], metavar="WHAT",
                        help="leave out WHAT, an assertion removed from the chapter after the runs (CELL_ID:WHAT: "
                             "only where cell CELL_ID recorded it, e.g. a call a sampling sweep re-ran there)")
    args = parser.parse_args(argv)
    weaken = {}
    for item in args.weaken:
        what, separator, bound = item.rpartition("=")
        if not separator or not what:
            parser.error(f"--weaken takes WHAT=BOUND, got {item!r}")
        weaken[what] = float(bound)
    rows = measure(args.runs, weaken, args.log10, args.drop)
    print(markdown(rows))
    if args.write:
        write(rows)
    return 0 if all(row["holds"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
