"""The generated table of each chapter's toleranced results (tools/nbtolerances.py)."""

from __future__ import annotations

import json

import pytest

from tests.test_tolerance import notebook
from tools import nbtolerances
from tools.nbexport import chapter_notebooks


def chapter_with_a_result(tmp_path, table_text: str):
    chapter = notebook("held-out WER 0.367 after 500 steps", "")
    chapter["cells"][0]["metadata"]["tolerances"] = [{"channel": "stdout", "number": 0, "tolerance": 0.2,
                                                      "relative": False}]
    chapter["cells"].append({"cell_type": "markdown", "id": "checked", "metadata": {}, "source": table_text})
    path = tmp_path / "chapter.ipynb"
    path.write_text(json.dumps(chapter), encoding="utf-8")
    return path


def test_the_table_lists_each_result_with_what_its_tolerance_was_set_from(tmp_path):
    path = chapter_with_a_result(tmp_path, f"## How this chapter is checked\n\n{nbtolerances.BEGIN}\n{nbtolerances.END}")
    record = tmp_path / "tolerances.json"
    record.write_text(json.dumps([{"notebook": "chapter.ipynb", "cell": "result", "channel": "stdout", "number": 0,
                                   "seen": [0.35, 0.41, 0.30], "largest_difference": 0.067}]), encoding="utf-8")
    text = nbtolerances.table(path, record)
    assert "| held-out WER **0.367** after | 0.367 | 0.2 | 3 runs; largest difference 0.067 |" in text
    assert "| held-out WER **0.367** after | 0.367 | 0.2 | not recorded |" in nbtolerances.table(path, tmp_path / "none.json")


def test_check_fails_on_a_missing_or_stale_table(tmp_path):
    path = chapter_with_a_result(tmp_path, "## How this chapter is checked")
    assert "no table" in nbtolerances.problems_in(path)[0]
    path = chapter_with_a_result(tmp_path, f"{nbtolerances.BEGIN}\n| typed | 0.300 |\n{nbtolerances.END}")
    assert "stale" in nbtolerances.problems_in(path)[0]
    nbtolerances.write(path)
    assert nbtolerances.problems_in(path) == []


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_every_chapter_table_is_current(path):
    assert nbtolerances.problems_in(path) == []
