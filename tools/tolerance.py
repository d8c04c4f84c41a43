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

import copy
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


# --- Tolerances kept out of the printed text --------------------------------------------------------------------
#
# ``annotated.utils.with_tolerance(value, tolerance)`` prints a result plainly ("3.12") and, when the executor asks
# for it (``TOLERANCE_LOG_ENV_VAR``), logs its text and tolerance. ``tools.nbexec`` finds each logged result among
# the numbers of the cell's outputs and records where, in the cell's metadata (``METADATA_KEY``):
#
#     "tolerances": [{"channel": "stdout", "number": 3, "tolerance": 0.08, "relative": false}, ...]
#
# ``channel`` is the stream's name (all of a cell's stdout text, concatenated, as nbval coalesces it) or, for a
# displayed result, ``"<n> <mime type>"`` with n counting the cell's non-stream outputs; ``number`` counts the
# numbers of that channel's text (``NUMBER``) from 0. The nbval plugin allows each such number its tolerance and
# compares everything else exactly.

TOLERANCE_LOG_ENV_VAR = "ANNOTATED_TOLERANCE_LOG"  # annotated.utils.TOLERANCE_LOG_ENV_VAR (tools do not import torch)
METADATA_KEY = "tolerances"
TEXT_FIELDS = ("text/plain", "text/markdown", "text/html")
NUMBER_PATTERN = re.compile(NUMBER)


def _joined(text: str | list[str]) -> str:
    return "".join(text) if isinstance(text, list) else text


def _channels_per_output(outputs: list[dict]) -> list[list[tuple[str, dict, str]]]:
    """(channel, container, key) of every text in ``outputs``, one list per output (see the module's note)."""
    groups, rich = [], 0
    for output in outputs:
        if output.get("output_type") == "stream":
            groups.append([(output.get("name", "stdout"), output, "text")])
        elif output.get("output_type") in ("display_data", "execute_result"):
            data = output.get("data") or {}
            groups.append([(f"{rich} {key}", data, key) for key in TEXT_FIELDS if key in data])
            rich += 1
        else:
            groups.append([])
    return groups


def output_channels(outputs: list[dict]) -> list[tuple[str, dict, str]]:
    """(channel, container, key) of every text in ``outputs``, in order."""
    return [item for group in _channels_per_output(outputs) for item in group]


def channel_texts(outputs: list[dict]) -> dict[str, str]:
    """Each channel's whole text."""
    texts: dict[str, str] = {}
    for channel, container, key in output_channels(outputs):
        texts[channel] = texts.get(channel, "") + _joined(container[key])
    return texts


def locate(outputs: list[dict], logged: list[dict]) -> list[dict]:
    """Where each result ``with_tolerance`` logged during a cell (in order: ``text``, ``tolerance``, ``relative``) was
    printed: the metadata entries described above. A result is looked for in each text of an output from where the
    previous one was found (a displayed table holds it once in every representation); one printed nowhere (used in
    a figure's title, say) gets no entry, so nothing about it is compared."""
    entries, cursor, numbers_seen = [], 0, {}
    for group in _channels_per_output(outputs):
        found_up_to = cursor
        for channel, container, key in group:
            position = cursor
            for match in NUMBER_PATTERN.finditer(_joined(container[key])):
                index = numbers_seen.get(channel, 0)
                numbers_seen[channel] = index + 1
                if position < len(logged) and match.group() == logged[position]["text"]:
                    entries.append({"channel": channel, "number": index, "tolerance": logged[position]["tolerance"],
                                    "relative": logged[position]["relative"]})
                    position += 1
            found_up_to = max(found_up_to, position)
        cursor = found_up_to
    return entries


def ambiguous(outputs: list[dict], entries: list[dict]) -> list[str]:
    """The entries ``locate`` found whose text the same channel also prints as a number nothing tolerates: the log
    gives a result's text, not its place, so which of the two is the trained result cannot be told (print the exact
    one with other digits, or word the output so the texts differ)."""
    tolerated = {(entry["channel"], entry["number"]) for entry in entries}
    texts = channel_texts(outputs)
    problems = []
    for entry in entries:
        numbers = [match.group() for match in NUMBER_PATTERN.finditer(texts[entry["channel"]])]
        text = numbers[entry["number"]]
        twins = [k for k, number in enumerate(numbers) if number == text and (entry["channel"], k) not in tolerated]
        if twins:
            problems.append(f"{text!r} ({entry['channel']}, number {entry['number']}) is also printed untoleranced "
                            f"as number {twins[0]}")
    return problems


def allowed_difference(stored: float, tolerance: float, relative: bool) -> float:
    return abs(stored) * tolerance / 100 if relative else tolerance


def compare_channel(stored: str, rerun: str, tolerated: dict[int, tuple[float, bool]]) -> list[str]:
    """Why ``rerun`` is not ``stored`` when its numbers listed in ``tolerated`` (number index: tolerance, relative)
    may move by their tolerance and everything else must be equal (an empty list when it is)."""
    if NUMBER_PATTERN.sub("#", stored) != NUMBER_PATTERN.sub("#", rerun):
        return ["the text around the toleranced numbers differs (it is compared exactly)"]
    problems = []
    for index, (old, new) in enumerate(zip(NUMBER_PATTERN.findall(stored), NUMBER_PATTERN.findall(rerun))):
        if index not in tolerated:
            if old != new:
                problems.append(f"{new} where {old} was stored (not toleranced, so compared exactly)")
            continue
        tolerance, relative = tolerated[index]
        allowed = allowed_difference(float(old), tolerance, relative)
        if abs(float(new) - float(old)) > allowed * (1 + 1e-9) + 1e-12:
            problems.append(f"{new} is outside {old} ± {tolerance:g}{'%' if relative else ''} "
                            f"(allowed difference {allowed:.4g}, seen {abs(float(new) - float(old)):.4g})")
    return problems


def reconcile_with_metadata(rerun: list[dict], stored: list[dict], entries: list[dict]) -> tuple[list[dict], list[str]]:
    """``rerun`` (nbval's coalesced outputs, a copy is returned) with every toleranced number that is within its
    tolerance written as stored, provided its whole channel is; also why the others are not."""
    rerun = copy.deepcopy(rerun)
    stored_texts, rerun_texts = channel_texts(stored), channel_texts(rerun)
    by_channel: dict[str, dict[int, tuple[float, bool]]] = {}
    for entry in entries:
        by_channel.setdefault(entry["channel"], {})[entry["number"]] = (entry["tolerance"], entry["relative"])
    problems = []
    for channel, tolerated in by_channel.items():
        if channel not in stored_texts or channel not in rerun_texts:
            continue  # a missing output: nbval's exact comparison reports it
        why = compare_channel(stored_texts[channel], rerun_texts[channel], tolerated)
        if why:
            problems += [f"{channel}: {reason}" for reason in why]
            continue
        stored_numbers = iter(NUMBER_PATTERN.findall(stored_texts[channel]))
        for name, container, key in output_channels(rerun):
            if name == channel:
                text = NUMBER_PATTERN.sub(lambda _, numbers=stored_numbers: next(numbers), _joined(container[key]))
                container[key] = text
    return rerun, problems
