"""Compare a re-run cell's text with its stored text, allowing each result its stated tolerance.

A chapter prints a result that depends on the machine (a trained loss, an error rate) as ``3.12 ± 0.08``: the
value, the sign ``±`` between single spaces, and the tolerance, either absolute (``± 0.08``) or relative to the
stored value (``± 5%``). When nbval compares the stored output with the re-run one, every such number may move by
its tolerance; the tolerance's own text and everything else in the output must stay exactly as stored. A number
printed without ``±`` is compared exactly, as before.

The tolerances are set in the chapter from a measured spread (``python -m tools.nbspread``), so "the notebook still
says what the book says" holds on any CPU or GPU while a real regression (a result outside its tolerance, a
changed table, a different shape) still fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NUMBER = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"
TOLERANCED = re.compile(rf"(?P<value>{NUMBER})(?P<rest> ± (?P<tolerance>{NUMBER})(?P<percent>%?))")


@dataclass(frozen=True)
class Result:
    """One toleranced number of a stored output."""

    value: float
    tolerance: float
    relative: bool
    text: str

    def allowed(self) -> float:
        """The largest difference from the stored value that still passes."""
        return abs(self.value) * self.tolerance / 100 if self.relative else self.tolerance

    def accepts(self, seen: float) -> bool:
        # A hair of slack for the decimal rounding of both printed numbers.
        return abs(seen - self.value) <= self.allowed() * (1 + 1e-9) + 1e-12


def toleranced_results(stored: str) -> list[Result]:
    """Every ``value ± tolerance`` in a stored text, in order."""
    return [
        Result(float(m["value"]), float(m["tolerance"]), m["percent"] == "%", m.group(0))
        for m in TOLERANCED.finditer(stored)
    ]


def _pattern(stored: str) -> re.Pattern[str]:
    """A regex that matches texts equal to ``stored`` except for the toleranced values, which it captures."""
    parts, end = [], 0
    for match in TOLERANCED.finditer(stored):
        parts.append(re.escape(stored[end:match.start()]))
        parts.append(f"({NUMBER})" + re.escape(match["rest"]))
        end = match.end()
    parts.append(re.escape(stored[end:]))
    return re.compile("".join(parts), re.DOTALL)


def compare_within_tolerance(stored: str, rerun: str) -> list[str]:
    """Why ``rerun`` is not ``stored`` up to the stated tolerances (an empty list when it is)."""
    results = toleranced_results(stored)
    if not results:
        return [] if stored == rerun else ["the text differs (it has no toleranced number, so it is compared exactly)"]
    match = _pattern(stored).fullmatch(rerun)
    if match is None:
        return ["the text around the toleranced numbers differs (it is compared exactly)"]
    problems = []
    for result, seen in zip(results, match.groups()):
        if not result.accepts(float(seen)):
            problems.append(
                f"{seen} is outside {result.text} (allowed difference {result.allowed():.4g}, "
                f"seen {abs(float(seen) - result.value):.4g})"
            )
    return problems
