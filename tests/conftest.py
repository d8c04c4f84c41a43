"""Fixtures for the unit tests (the nbval set-up shared with notebooks lives in the root conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import nbformat
import pytest


@pytest.fixture
def make_notebook(tmp_path: Path) -> Callable[..., Path]:
    """Write a notebook into ``tmp_path/notebooks`` from (cell_type, source) pairs and return its path."""

    def make(name: str, cells: list[tuple[str, str]], folder: str = "notebooks") -> Path:
        notebook = nbformat.v4.new_notebook()
        for kind, source in cells:
            maker = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
            notebook.cells.append(maker(source))
        path = tmp_path / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, path)
        return path

    return make
