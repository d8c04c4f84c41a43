"""pytest plugin: nbval compares toleranced results within their tolerance, all else exactly.

A cell's toleranced results are either listed in its metadata (``tolerances``, written by ``tools.nbexec`` for the
results a chapter prints with ``annotated.utils.with_tolerance``; see ``tools/tolerance.py``) or printed as
``3.12 ± 0.08`` (the older ``toleranced``).

Loaded by the repository's ``conftest.py`` (``pytest_plugins``), or by hand with ``-p tools.nbval_tolerance``.
Before nbval compares a cell's re-run outputs with the stored ones, each re-run text that equals its stored text up
to the stated tolerances (``tools.tolerance``) is replaced by the stored text, so nbval's own exact comparison then
passes; a text that is outside a tolerance is left as it ran, so nbval reports the difference, and the numbers that
broke their tolerance are listed under it.
"""

from __future__ import annotations

import copy
from typing import Any

from nbval.plugin import IPyNbCell

from tools.tolerance import METADATA_KEY, compare_within_tolerance, reconcile_with_metadata, toleranced_results


TEXT_FIELDS = ("text/plain", "text/markdown", "text/html")


def _text_fields(output: Any) -> list[tuple[Any, str]]:
    """(container, key) of every text of an output that may hold toleranced numbers."""
    if output.get("output_type") == "stream":
        return [(output, "text")]
    data = output.get("data") or {}
    return [(data, key) for key in TEXT_FIELDS if key in data]


def reconcile(rerun: list, stored: list) -> tuple[list, list[str]]:
    """Re-run outputs with every text that is within tolerance of its stored text replaced by the stored text.

    Also returns, for the texts outside their tolerances, why. Outputs are paired by position, and only when their
    kinds agree; anything else is left to nbval's exact comparison.
    """
    rerun = copy.deepcopy(rerun)
    problems: list[str] = []
    for new, old in zip(rerun, stored):
        if new.get("output_type") != old.get("output_type") or new.get("name") != old.get("name"):
            continue
        old_fields = dict((key, container[key]) for container, key in _text_fields(old))
        for container, key in _text_fields(new):
            stored_text = old_fields.get(key)
            if not isinstance(stored_text, str) or not toleranced_results(stored_text):
                continue
            why = compare_within_tolerance(stored_text, container[key])
            if why:
                problems.extend(f"{key}: {reason}" for reason in why)
            else:
                container[key] = stored_text
    return rerun, problems


_exact_compare_outputs = IPyNbCell.compare_outputs


def _compare_outputs_within_tolerance(self: IPyNbCell, test: list, ref: list, skip_compare: Any = None) -> bool:
    entries = (getattr(self, "cell", None) or {}).get("metadata", {}).get(METADATA_KEY, [])
    test, problems = reconcile_with_metadata(test, ref, entries) if entries else (test, [])
    test, more_problems = reconcile(test, ref)
    problems += more_problems
    same = _exact_compare_outputs(self, test, ref, skip_compare)
    if not same and problems:
        self.comparison_traceback.append("toleranced results outside their tolerance:")
        self.comparison_traceback.extend(f"  {problem}" for problem in problems)
    return same


def pytest_configure(config: Any) -> None:
    IPyNbCell.compare_outputs = _compare_outputs_within_tolerance
