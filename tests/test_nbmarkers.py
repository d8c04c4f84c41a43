"""Test markers are cell tags, not code (tools/nbmarkers.py)."""

from __future__ import annotations

import json

import pytest

from tests.test_tolerance import notebook, run_nbval_on
from tools import nbmarkers
from tools.nbexport import chapter_notebooks


def test_a_marker_comment_becomes_a_tag_and_its_explanation_goes():
    source = "# NBVAL_IGNORE_OUTPUT\n# (samples differ between machines;\n# the shares are asserted)\nprint(1)\n# (kept)"
    assert nbmarkers.untagged(source) == ("print(1)\n# (kept)", ["nbval-ignore-output"])
    with pytest.raises(ValueError, match="unknown nbval marker"):
        nbmarkers.untagged("# NBVAL_IGNORE_OUTPUTS\nprint(1)")


def test_check_finds_a_planted_marker_comment(tmp_path):
    chapter = notebook("1", "1")
    chapter["cells"][0]["source"] = "x = 1\n# NBVAL_SKIP\nprint(x)"
    path = tmp_path / "chapter.ipynb"
    path.write_text(json.dumps(chapter), encoding="utf-8")
    assert nbmarkers.main(["--check", str(path)]) == 1
    assert nbmarkers.main([str(path)]) == 0 and nbmarkers.main(["--check", str(path)]) == 0
    cell = json.loads(path.read_text(encoding="utf-8"))["cells"][0]
    assert cell["source"] == "x = 1\nprint(x)" and cell["metadata"]["tags"] == ["nbval-skip"]


def test_nbval_honours_the_tag(tmp_path):
    chapter = notebook("a sample from one machine", "a sample from another machine")
    path = tmp_path / "copy.ipynb"
    path.write_text(json.dumps(chapter), encoding="utf-8")
    assert run_nbval_on(tmp_path, path).returncode != 0
    chapter["cells"][0]["metadata"]["tags"] = ["nbval-ignore-output"]
    path.write_text(json.dumps(chapter), encoding="utf-8")
    assert run_nbval_on(tmp_path, path).returncode == 0


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_no_chapter_carries_a_marker_comment(path):
    assert nbmarkers.marker_cells(json.loads(path.read_text(encoding="utf-8"))) == []
