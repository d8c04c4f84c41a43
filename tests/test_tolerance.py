"""The tolerance-aware comparison of stored and re-run notebook outputs (tools/tolerance.py, tools/nbval_tolerance.py).

The unit tests pin down what may move (a ``value ± tolerance`` within its tolerance) and what may not (anything
else). The end-to-end tests run nbval through pytest on a copy of a small notebook whose stored result was changed,
exactly as the test command runs on the chapters, and show that a result outside its tolerance fails it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.nbexport import REPO_ROOT, cell_source, chapter_notebooks
from tools.tolerance import ambiguous, compare_channel, compare_within_tolerance, locate, toleranced_results


def test_a_toleranced_number_may_move_within_its_tolerance():
    assert compare_within_tolerance("bits per character: 3.12 ± 0.08\n", "bits per character: 3.19 ± 0.08\n") == []
    assert compare_within_tolerance("loss 3.12 ± 0.08", "loss 3.04 ± 0.08") == []


def test_a_toleranced_number_outside_its_tolerance_fails():
    problems = compare_within_tolerance("bits per character: 3.12 ± 0.08", "bits per character: 3.21 ± 0.08")
    assert len(problems) == 1 and "3.21 is outside 3.12 ± 0.08" in problems[0]


def test_a_relative_tolerance_is_a_percentage_of_the_stored_value():
    assert compare_within_tolerance("WER 0.400 ± 10%", "WER 0.440 ± 10%") == []
    assert compare_within_tolerance("WER 0.400 ± 10%", "WER 0.441 ± 10%") != []


def test_everything_around_toleranced_numbers_is_compared_exactly():
    assert compare_within_tolerance("loss 3.12 ± 0.08 after 500 steps", "loss 3.12 ± 0.08 after 400 steps") != []
    assert compare_within_tolerance("loss 3.12 ± 0.08", "loss 3.12 ± 0.10") != [], "the tolerance itself is fixed"
    assert compare_within_tolerance("Loss 3.12 ± 0.08", "loss 3.12 ± 0.08") != []
    assert compare_within_tolerance("shape (4, 3)", "shape (4, 2)") != [], "plain numbers stay exact"
    assert compare_within_tolerance("shape (4, 3)", "shape (4, 3)") == []


def test_every_toleranced_number_of_a_text_is_checked():
    stored = "| model | bpc |\n| bigram | 3.64 ± 0.02 |\n| Reformer | 3.12 ± 0.08 |\n"
    assert len(toleranced_results(stored)) == 2
    assert compare_within_tolerance(stored, stored.replace("3.64", "3.70")) != []
    assert compare_within_tolerance(stored, stored.replace("3.12", "3.18")) == []


def notebook(stored_text: str, printed_text: str) -> dict:
    """A one-cell notebook that prints ``printed_text`` and has ``stored_text`` stored as its output."""
    return {
        "cells": [{
            "cell_type": "code", "execution_count": 1, "id": "result", "metadata": {},
            "source": f"print({printed_text!r})",
            "outputs": [{"name": "stdout", "output_type": "stream", "text": stored_text + "\n"}],
        }],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


def run_nbval(tmp_path: Path, stored_text: str, printed_text: str, *plugins: str) -> subprocess.CompletedProcess:
    path = tmp_path / "copy.ipynb"
    path.write_text(json.dumps(notebook(stored_text, printed_text)), encoding="utf-8")
    return run_nbval_on(tmp_path, path, *plugins)



def test_nbspread_margins_reports_the_share_of_each_tolerance_a_run_used(tmp_path):
    from tools.nbspread import margins

    stored = tmp_path / "chapter.ipynb"
    stored.write_text(json.dumps(notebook("loss 3.20 ± 0.08, WER 0.400 ± 10%", "")), encoding="utf-8")
    for run, text in {"near": "loss 3.24 ± 0.08, WER 0.400 ± 10%", "far": "loss 3.10 ± 0.08, WER 0.380 ± 10%"}.items():
        (tmp_path / run).mkdir()
        (tmp_path / run / "chapter.ipynb").write_text(json.dumps(notebook(text, "")), encoding="utf-8")
    loss, wer = margins(stored, [tmp_path / "near", tmp_path / "far"])
    assert "seen 3.24, 3.1" in loss and "125% of tolerance  OUTSIDE" in loss
    assert "seen 0.4, 0.38" in wer and " 50% of tolerance" in wer and "OUTSIDE" not in wer


def test_nbspread_shifts_the_seeds_of_seed_everything_and_of_a_named_function(tmp_path):
    from tools.nbspread import cell_text, run_variant

    chapter = notebook("", "")
    chapter["cells"] = [
        {"cell_type": "code", "execution_count": None, "id": "define", "metadata": {}, "outputs": [],
         "source": "from annotated.utils import seed_everything\n\ndef train(steps, seed=0):\n    return seed"},
        {"cell_type": "code", "execution_count": None, "id": "use", "metadata": {}, "outputs": [],
         "source": "print(train(5), train(5, seed=10), seed_everything(0).initial_seed())"},
    ]
    path = tmp_path / "chapter.ipynb"
    path.write_text(json.dumps(chapter), encoding="utf-8")
    run_variant(path, tmp_path / "shifted", None, 3, ("train",))
    cells = json.loads((tmp_path / "shifted" / "chapter.ipynb").read_text(encoding="utf-8"))["cells"]
    assert [cell["id"] for cell in cells] == ["define", "use"], "the injected cells are removed from the copy"
    assert cell_text(cells[1]) == "3 13 3\n"
    with pytest.raises(ValueError, match="no code cell"):
        run_variant(path, tmp_path / "missing", None, 3, ("fine_tune",))

def test_nbval_accepts_a_rerun_result_within_its_tolerance(tmp_path):
    ran = run_nbval(tmp_path, "held-out loss: 3.12 ± 0.08", "held-out loss: 3.15 ± 0.08", "tools.nbval_tolerance")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    without_plugin = run_nbval(tmp_path, "held-out loss: 3.12 ± 0.08", "held-out loss: 3.15 ± 0.08")
    assert without_plugin.returncode != 0, "plain nbval compares exactly, so this case proves the plugin is used"


def test_nbval_fails_on_a_stored_result_changed_beyond_its_tolerance(tmp_path):
    ran = run_nbval(tmp_path, "held-out loss: 3.30 ± 0.08", "held-out loss: 3.15 ± 0.08", "tools.nbval_tolerance")
    assert ran.returncode != 0
    assert "Cell outputs differ" in ran.stdout and "3.15 is outside 3.30 ± 0.08" in ran.stdout, ran.stdout


def test_the_test_command_loads_the_plugin():
    from conftest import pytest_plugins

    assert "tools.nbval_tolerance" in pytest_plugins


def stored_texts(path: Path) -> list[tuple[int, str]]:
    texts = []
    for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            texts.append((index, "".join(text) if isinstance(text, list) else text))
    return texts


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_stored_tolerances_are_positive_and_the_outputs_compare_with_themselves(path):
    for index, text in stored_texts(path):
        for result in toleranced_results(text):
            assert result.tolerance > 0, f"{path.name} cell {index}: {result.text}"
        assert compare_within_tolerance(text, text) == [], f"{path.name} cell {index}"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_a_cell_whose_output_is_ignored_asserts_something(path):
    """Nothing may become unchecked: a cell nbval does not compare must check what it shows itself."""
    for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        source = cell_source(cell)
        ignored = "NBVAL_IGNORE_OUTPUT" in source.split("\n", 1)[0] or "nbval-ignore-output" in cell["metadata"].get(
            "tags", [])
        shows_something = bool(cell.get("outputs"))
        if ignored and shows_something:
            assert any(check in source for check in ("assert ", "raise ", "expect(")), \
                f"{path.name} cell {index} ignores its output unchecked"


def calls_followed_by_a_percent_sign(source: str, function: str = "toleranced") -> list[str]:
    """Each ``function(...)`` call in ``source`` whose text is followed by ``%`` (as in ``f"{toleranced(x, 0.5)}%"``)."""
    found = []
    for start in (i for i in range(len(source)) if source.startswith(f"{function}(", i)):
        depth, end = 0, start + len(function)
        for end in range(start + len(function), len(source)):
            depth += {"(": 1, ")": -1}.get(source[end], 0)
            if depth == 0:
                break
        if source[end + 1:end + 3].lstrip("}")[:1] == "%":
            found.append(source[start:end + 3])
    return found


def test_the_percent_guard_finds_an_absolute_tolerance_printed_before_a_percent_sign():
    assert calls_followed_by_a_percent_sign('print(f"WER {toleranced(wer * 100, 2.0, digits=1)}%")') == [
        'toleranced(wer * 100, 2.0, digits=1)}%']
    assert calls_followed_by_a_percent_sign('print(f"WER {toleranced(wer, "10%")} ({n} clips)")') == []


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_no_absolute_tolerance_is_printed_before_a_percent_sign(path):
    """``3.5 ± 0.5%`` reads as a relative tolerance of 0.5%: a relative one must be asked for as ``"10%"``."""
    for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        if cell["cell_type"] == "code":
            assert calls_followed_by_a_percent_sign(cell_source(cell)) == [], f"{path.name} cell {index}"


# --- tolerances recorded in the cell's metadata (annotated.utils.with_tolerance, tools.nbexec) -------------------

def test_locate_finds_each_logged_result_in_order_in_every_representation():
    outputs = [{"output_type": "stream", "name": "stdout", "text": "WER 0.367 after 10 steps\n"},
               {"output_type": "display_data", "data": {"text/plain": "loss 3.12", "text/html": "<td>3.12</td>"}},
               {"output_type": "stream", "name": "stdout", "text": "again 0.367, then 0.5\n"}]
    logged = [{"text": "0.367", "tolerance": 0.2, "relative": False}, {"text": "3.12", "tolerance": 5, "relative": True},
              {"text": "0.5", "tolerance": 0.1, "relative": False}, {"text": "9.99", "tolerance": 1, "relative": False}]
    assert [(e["channel"], e["number"]) for e in locate(outputs, logged)] == [
        ("stdout", 0), ("0 text/plain", 0), ("0 text/html", 0), ("stdout", 3)]  # 9.99 was never printed


def test_a_toleranced_text_printed_again_untoleranced_is_ambiguous():
    outputs = [{"output_type": "stream", "name": "stdout", "text": "unigram 4.58\npositions only 4.58\nReformer 3.15\n"}]
    logged = [{"text": "4.58", "tolerance": 0.03, "relative": False}, {"text": "3.15", "tolerance": 0.2, "relative": False}]
    entries = locate(outputs, logged)
    assert len(ambiguous(outputs, entries)) == 1 and "'4.58'" in ambiguous(outputs, entries)[0]
    both = locate(outputs, [logged[0], logged[0], logged[1]])  # both 4.58 toleranced: nothing to tell apart
    assert ambiguous(outputs, both) == [] and ambiguous(outputs, locate(outputs, logged[1:])) == []


def test_compare_channel_allows_only_the_listed_numbers_their_tolerance():
    tolerated = {0: (0.08, False), 2: (10.0, True)}
    assert compare_channel("loss 3.12 at 500, WER 0.400", "loss 3.19 at 500, WER 0.440", tolerated) == []
    assert "outside 3.12 ± 0.08" in compare_channel("loss 3.12 at 500, WER 0.400", "loss 3.21 at 500, WER 0.400",
                                                    tolerated)[0]
    assert compare_channel("loss 3.12 at 500, WER 0.400", "loss 3.12 at 400, WER 0.400", tolerated) != []
    assert compare_channel("loss 3.12 at 500, WER 0.400", "loss 3.12 at 500, WER 0.441", tolerated) != []
    assert compare_channel("Loss 3.12 at 500, WER 0.400", "loss 3.12 at 500, WER 0.400", tolerated) != []


def test_nbexec_records_where_with_tolerance_printed_and_nbval_uses_it(tmp_path):
    from tools.nbexec import execute

    chapter = notebook("", "")
    chapter["cells"][0].update(source="from annotated.utils import with_tolerance\n"
                                      "print('loss', with_tolerance(3.1234, 0.08), 'after', 500, 'steps')",
                               outputs=[], execution_count=None)
    path = tmp_path / "chapter.ipynb"
    path.write_text(json.dumps(chapter), encoding="utf-8")
    execute(path)
    cell = json.loads(path.read_text(encoding="utf-8"))["cells"][0]
    assert cell["outputs"][0]["text"] == "loss 3.12 after 500 steps\n" and cell["execution_count"] == 1
    assert cell["metadata"]["tolerances"] == [{"channel": "stdout", "number": 0, "tolerance": 0.08, "relative": False}]
    for printed, passes in [("loss 3.17 after 500 steps", True), ("loss 3.21 after 500 steps", False),
                            ("loss 3.12 after 400 steps", False)]:
        cell["source"] = f"print({printed!r})"
        copy = tmp_path / "copy.ipynb"
        copy.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), "cells": [cell]}), encoding="utf-8")
        ran = run_nbval_on(tmp_path, copy, "tools.nbval_tolerance")
        assert (ran.returncode == 0) is passes, (printed, ran.stdout[-2000:])
        if not passes and "3.21" in printed:
            assert "outside 3.12 ± 0.08" in ran.stdout
    without_plugin = run_nbval_on(tmp_path, copy.parent / "copy.ipynb")
    assert without_plugin.returncode != 0


def run_nbval_on(tmp_path: Path, path: Path, *plugins: str) -> subprocess.CompletedProcess:
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    arguments = [arg for plugin in plugins for arg in ("-p", plugin)]
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *arguments, "--nbval",
         "--nbval-current-env", "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), str(path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def test_nbspread_margins_reads_tolerances_from_the_cell_metadata(tmp_path):
    from tools.nbspread import margins

    stored = tmp_path / "chapter.ipynb"
    chapter = notebook("loss 3.20 after 500 steps, WER 0.400", "")
    chapter["cells"][0]["metadata"]["tolerances"] = [
        {"channel": "stdout", "number": 0, "tolerance": 0.08, "relative": False},
        {"channel": "stdout", "number": 2, "tolerance": 10.0, "relative": True}]
    stored.write_text(json.dumps(chapter), encoding="utf-8")
    for run, text in {"near": "loss 3.24 after 500 steps, WER 0.400", "far": "loss 3.10 after 500 steps, WER 0.380"}.items():
        (tmp_path / run).mkdir()
        (tmp_path / run / "chapter.ipynb").write_text(json.dumps(notebook(text, "")), encoding="utf-8")
    loss, wer = margins(stored, [tmp_path / "near", tmp_path / "far"])
    assert "3.20 ± 0.08" in loss and "seen 3.24, 3.1" in loss and "125% of tolerance  OUTSIDE" in loss
    assert "0.400 ± 10%" in wer and " 50% of tolerance" in wer and "OUTSIDE" not in wer


def first_toleranced_cell(path: Path) -> dict | None:
    return next((cell for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]
                 if cell.get("metadata", {}).get("tolerances")), None)


@pytest.mark.parametrize("path", [p for p in chapter_notebooks() if first_toleranced_cell(p)], ids=lambda p: p.name)
def test_nbval_fails_when_a_real_chapter_result_moves_beyond_its_recorded_tolerance(tmp_path, path):
    """A chapter's first toleranced cell, its stored outputs and metadata kept, re-run as a print of its stored text
    with the first recorded number moved: by half its tolerance it passes, by one and a half it fails."""
    from tools.tolerance import NUMBER_PATTERN, allowed_difference, channel_texts

    cell = first_toleranced_cell(path)
    entry = cell["metadata"]["tolerances"][0]
    if not entry["channel"] in ("stdout", "stderr"):
        pytest.skip("the first recorded result is in a displayed output, which a print cannot re-create")
    text = channel_texts(cell["outputs"])[entry["channel"]]
    match = list(NUMBER_PATTERN.finditer(text))[entry["number"]]
    stored = float(match.group())
    decimals = len(match.group().partition(".")[2])
    allowed = allowed_difference(stored, entry["tolerance"], entry["relative"])
    other_texts = [t for c, t in channel_texts(cell["outputs"]).items() if c != entry["channel"]]
    if other_texts:
        pytest.skip("the cell shows more than one kind of output")
    for factor, passes in [(0.5, True), (1.5, False)]:
        moved = f"{stored + factor * allowed:.{decimals}f}"
        printed = text[:match.start()] + moved + text[match.end():]
        planted = {**cell, "source": f"import sys\nprint({printed!r}, end='', file=sys.{entry['channel']})"}
        copy = tmp_path / f"planted-{factor}.ipynb"
        copy.write_text(json.dumps({"cells": [planted], "metadata": {"kernelspec": {
            "display_name": "Python 3", "language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}),
            encoding="utf-8")
        ran = run_nbval_on(tmp_path, copy, "tools.nbval_tolerance")
        assert (ran.returncode == 0) is passes, (path.name, moved, ran.stdout[-1500:])
