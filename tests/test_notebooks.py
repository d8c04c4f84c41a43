"""House rules every chapter notebook follows: title, summary, Colab badge and a Colab-only setup cell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tools.nbexport import REPO_ROOT, cell_source, chapter_notebooks


CONFIG = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
TOC = (REPO_ROOT / "_toc.yml").read_text()


def colab_url(notebook: Path) -> str:
    repository = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    relative = notebook.relative_to(REPO_ROOT).as_posix()
    return f"{CONFIG['launch_buttons']['colab_url']}/github/{repository}/blob/{CONFIG['repository']['branch']}/{relative}"


def load_cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def test_there_is_at_least_one_chapter():
    assert chapter_notebooks(), "notebooks/*.ipynb is empty"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chapter_opens_with_title_summary_and_colab_badge(path):
    first = load_cells(path)[0]
    text = cell_source(first)
    assert first["cell_type"] == "markdown" and text.startswith("# "), "first cell: '# Title' in markdown"
    lines = [line for line in text.splitlines()[1:] if line.strip()]
    assert lines and not lines[0].startswith("["), "a one-line summary follows the title"
    assert f"({colab_url(path)})" in text, f"the Colab badge must link to {colab_url(path)}"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chapter_has_a_colab_only_setup_cell_hidden_and_skipped(path):
    setup = [c for c in load_cells(path) if c["cell_type"] == "code" and "google.colab" in cell_source(c)]
    assert len(setup) == 1, "exactly one setup cell guarded by 'google.colab' in sys.modules"
    tags = setup[0]["metadata"].get("tags", [])
    assert {"remove-cell", "nbval-skip"} <= set(tags), f"setup cell tags must include remove-cell and nbval-skip: {tags}"
    source = cell_source(setup[0])
    assert f"git+{CONFIG['repository']['url']}@{CONFIG['repository']['branch']}" in source
    assert "torch" not in source.replace("touching Colab's torch", ""), "never reinstall Colab's torch"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chapter_is_in_the_table_of_contents(path):
    assert f"file: notebooks/{path.stem}\n" in TOC


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chapter_hides_build_cells_and_widget_text_on_the_website(path):
    # The site is read, not run: the exporter's directive and a widget's placeholder text mean nothing there.
    # (tools/textcheck.py html checks the built pages; this catches it without building the book.)
    for index, cell in enumerate(load_cells(path)):
        source, tags = cell_source(cell), set(cell["metadata"].get("tags", []))
        if cell["cell_type"] == "code" and source.strip().startswith("#| default_exp") and "\n" not in source.strip():
            assert "remove-cell" in tags, f"cell {index}: the '#| default_exp' cell needs the tag remove-cell"
        if cell["cell_type"] == "code" and "widgets.interactive(" in source:
            assert tags & {"remove-output", "remove-cell"}, f"cell {index}: a widget cell needs the tag remove-output"
