"""The margin rule (tools/margins.py) and its record: every ``expect`` in a chapter has a measured margin that holds."""

from __future__ import annotations

import ast
import json

import pytest

from annotated.utils import expect
from tools import margins
from tools.nbexport import REPO_ROOT, cell_source, chapter_notebooks


# The chapter that defines ``expect`` calls it on constants, once past its bound on purpose: a demonstration, not a
# measured quantity.
DEFINES_EXPECT = "00_utils.ipynb"


def expect_calls(source: str) -> list[ast.Call]:
    """The calls of ``expect`` in a code cell (IPython's ``%`` and ``!`` lines left out)."""
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    return [node for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name) and node.func.id == "expect"]


def chapter_expectations() -> list[tuple[str, str, object, object, object]]:
    """(notebook, cell id, what, comparison, bound) for every ``expect`` call of every chapter; ``what`` and
    ``comparison`` are their literals, or the nodes; ``bound`` its literal number, or None when it is computed."""
    found = []
    for path in chapter_notebooks():
        if path.name == DEFINES_EXPECT:
            continue
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code" or "expect(" not in cell_source(cell):
                continue
            for call in expect_calls(cell_source(cell)):
                what = call.args[3] if len(call.args) > 3 else next(
                    (k.value for k in call.keywords if k.arg == "what"), None)
                bound = call.args[2] if len(call.args) > 2 else None
                literal = bound.value if isinstance(bound, ast.Constant) else None
                comparison = call.args[1] if len(call.args) > 1 else None
                found.append((path.name, cell.get("id"), what.value if isinstance(what, ast.Constant) else what,
                              comparison.value if isinstance(comparison, ast.Constant) else comparison, literal))
    return found


def test_every_chapter_expectation_has_a_measured_margin_that_holds():
    record = json.loads(margins.MARGINS_JSON.read_text()) if margins.MARGINS_JSON.is_file() else []
    measured = {(row["notebook"], row["cell"], row["what"], row["comparison"]): row for row in record}
    problems = []
    for notebook, cell_id, what, comparison, bound in chapter_expectations():
        key = (notebook, cell_id, what, comparison)
        if not isinstance(what, str) or not isinstance(comparison, str):
            problems.append(f"{notebook} cell {cell_id}: name the quantity and the comparison with string literals")
        elif key not in measured:
            problems.append(f"{notebook} cell {cell_id} {what!r} {comparison}: no measured margin "
                            "(python -m tools.margins --write)")
        elif not measured[key]["holds"]:
            problems.append(f"{notebook} cell {cell_id} {what!r} {comparison}: breaks the margin rule")
        elif bound is not None and float(bound) != measured[key]["bound"]:
            problems.append(f"{notebook} cell {cell_id} {what!r}: asserts {comparison} {bound}, the record judged "
                            f"{measured[key]['bound']}")
    assert problems == []


def test_the_record_lists_only_what_the_chapters_assert():
    record = json.loads(margins.MARGINS_JSON.read_text()) if margins.MARGINS_JSON.is_file() else []
    asserted = {(notebook, cell_id, what, comparison) for notebook, cell_id, what, comparison, _ in chapter_expectations()}
    stale = [(row["notebook"], row["cell"], row["what"], row["comparison"]) for row in record
             if (row["notebook"], row["cell"], row["what"], row["comparison"]) not in asserted]
    assert stale == [], "rows for assertions no chapter makes (re-run tools.margins, --drop for removed ones)"


def test_an_assertion_removed_after_the_runs_is_dropped_from_the_record(tmp_path):
    run = tmp_path / "seed0"
    run.mkdir()
    calls = [{"id": "c1", "what": what, "value": 0.4, "comparison": "<", "bound": 0.5, "passed": True}
             for what in ("loss", "removed")]
    (run / "ch.json").write_text(json.dumps({"notebook": "ch.ipynb", "expectations": calls}))
    assert [row["what"] for row in margins.measure([run], drop=["removed"])] == ["loss"]
    with pytest.raises(ValueError, match="no run recorded"):
        margins.measure([run], drop=["never asserted"])


@pytest.mark.parametrize(("values", "bound", "holds"), [
    ([0.40, 0.41, 0.39], 0.5, True),      # 0.09 inside, sd 0.01: needs max(0.03, 0.025)
    ([0.40, 0.47, 0.39], 0.5, False),     # one run came within 0.03 of the bound
    ([0.40, 0.40, 0.51], 0.5, False),     # one run is past it
])
def test_the_rule_on_planted_runs(values, bound, holds):
    assert margins.verdict(values, "<", bound, reference=0.40)["holds"] is holds


def test_the_rule_measures_from_the_correct_side_of_a_lower_bound():
    assert margins.verdict([0.9, 0.91], ">", 0.5, reference=0.9)["closest_inside"] == pytest.approx(0.4)
    assert not margins.verdict([0.9, 0.52], ">", 0.5, reference=0.9)["holds"]


def test_runs_are_collected_per_assertion_and_merged_per_notebook(tmp_path):
    for offset, value in enumerate([0.40, 0.42, 0.38]):
        run = tmp_path / f"seed{offset}"
        run.mkdir()
        calls = [{"id": "c1", "what": "loss", "value": value, "comparison": "<", "bound": 0.5, "passed": True}]
        (run / "ch.json").write_text(json.dumps({"notebook": "ch.ipynb", "seed_offset": offset, "isa": None,
                                                 "expectations": calls}))
    rows = margins.measure(sorted(tmp_path.glob("seed*")))
    assert len(rows) == 1 and rows[0]["reference"] == 0.40 and rows[0]["runs"] == 3 and rows[0]["holds"]
    json_path, md_path = tmp_path / "m.json", tmp_path / "m.md"
    json_path.write_text(json.dumps([{**rows[0], "notebook": "other.ipynb"}, {**rows[0], "what": "stale"}]))
    merged = margins.write(rows, json_path, md_path)
    assert [(r["notebook"], r["what"]) for r in merged] == [("ch.ipynb", "loss"), ("other.ipynb", "loss")]
    assert "| ch.ipynb | c1 | loss | < 0.5 | 3 |" in md_path.read_text()


def test_expect_raises_like_assert_and_logs_when_asked(tmp_path, monkeypatch):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("ANNOTATED_EXPECT_LOG", str(log))
    expect(0.2, "<", 0.5, "loss")
    with pytest.raises(AssertionError, match="expected loss < 0.5, got 0.7"):
        expect(0.7, "<", 0.5, "loss")
    with pytest.raises(AssertionError):
        expect(float("nan"), ">", 0.0, "reward")
    with pytest.raises(ValueError, match="comparison"):
        expect(1.0, "==", 1.0, "loss")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["value"], r["passed"]) for r in lines[:2]] == [(0.2, True), (0.7, False)] and len(lines) == 3


def test_the_scan_finds_expect_calls_and_their_names():
    calls = expect_calls("%matplotlib inline\nexpect(loss, '<', 0.5, 'held-out loss')\nexpect(a, '>', b, what=name)")
    assert [c.args[3].value if len(c.args) > 3 else None for c in calls] == ["held-out loss", None]
    assert (REPO_ROOT / "tools" / "margins.py").is_file()


def test_a_bound_may_be_loosened_after_the_runs_but_not_tightened(tmp_path):
    run = tmp_path / "seed0"
    run.mkdir()
    calls = [{"id": "c", "what": "gain", "value": v, "comparison": ">", "bound": 1.3, "passed": True} for v in (1.6, 1.8)]
    (run / "ch.json").write_text(json.dumps({"notebook": "ch.ipynb", "seed_offset": 0, "isa": None,
                                             "expectations": calls}))
    assert not margins.measure([run])[0]["holds"]
    loosened = margins.measure([run], {"gain": 1.0})[0]
    assert loosened["bound"] == 1.0 and loosened["measured_with_bound"] == 1.3 and loosened["holds"]
    with pytest.raises(ValueError, match="tighter"):
        margins.measure([run], {"gain": 1.5})
    with pytest.raises(ValueError, match="no run recorded"):
        margins.measure([run], {"loss": 1.0})


def test_a_quantity_bounded_on_both_sides_is_two_assertions(tmp_path):
    run = tmp_path / "seed0"
    run.mkdir()
    calls = [{"id": "c", "what": "masked share", "value": v, "comparison": c, "bound": b, "passed": True}
             for v in (0.44, 0.46) for c, b in ((">", 0.3), ("<", 0.5))]
    (run / "ch.json").write_text(json.dumps({"notebook": "ch.ipynb", "seed_offset": 0, "isa": None,
                                             "expectations": calls}))
    rows = margins.measure([run])
    assert [(r["comparison"], r["bound"], r["holds"]) for r in rows] == [("<", 0.5, False), (">", 0.3, True)]
    with pytest.raises(ValueError, match="both sides"):
        margins.measure([run], {"masked share": 0.6})


def test_a_ratio_spread_over_a_factor_is_judged_on_a_log_scale(tmp_path):
    run = tmp_path / "seed0"
    run.mkdir()
    calls = [{"id": "c", "what": "variance ratio", "value": v, "comparison": ">", "bound": 2.0, "passed": True}
             for v in (8.0, 11.7, 8.7, 31.2, 12.1, 8.1, 13.0, 11.5, 12.9)]
    (run / "ch.json").write_text(json.dumps({"notebook": "ch.ipynb", "seed_offset": 0, "isa": None,
                                             "expectations": calls}))
    assert not margins.measure([run])[0]["holds"]  # one policy's 31 makes the raw spread wider than every margin
    row = margins.measure([run], log10=["variance ratio"])[0]
    assert row["what"] == "log10 of variance ratio" and row["bound"] == pytest.approx(0.30103) and row["holds"]
    with pytest.raises(ValueError, match="no run recorded"):
        margins.measure([run], log10=["other"])


def test_drop_in_one_cell_keeps_the_same_assertion_elsewhere(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    calls = [{"id": cell, "what": "accuracy", "value": 0.98, "comparison": ">", "bound": 0.9, "passed": True}
             for cell in ("judge", "sweep")]
    (run / "x.json").write_text(json.dumps({"notebook": "x.ipynb", "raised": [], "expectations": calls}))
    rows = margins.measure([run], drop=["sweep:accuracy"])
    assert [(row["cell"], row["what"]) for row in rows] == [("judge", "accuracy")]
    with pytest.raises(ValueError, match="no run recorded"):
        margins.measure([run], drop=["elsewhere:accuracy"])
