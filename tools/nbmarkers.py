"""Test markers are cell tags, not code: move nbval's comment markers into the cells' tags.

nbval reads a marker either as a comment on a code cell's first line (``# NBVAL_IGNORE_OUTPUT``) or as a cell tag
(``nbval-ignore-output``). A comment is part of the code a reader sees, on the website and in Colab, so the book uses
tags only: this tool moves each comment marker into the cell's tags and drops the parenthesised comment that
followed it (an explanation for the tests, such as "(samples differ between machines; ... asserted)"), and
``--check`` lists the code cells that still carry a marker comment (``tools.textcheck`` fails on them too).

    python -m tools.nbmarkers notebooks/05_wav2vec2.ipynb     # move the markers of a chapter into tags
    python -m tools.nbmarkers --check                         # every chapter: marker comments left?
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from tools.nbexport import cell_source, chapter_notebooks


MARKER_TAGS = {
    "NBVAL_IGNORE_OUTPUT": "nbval-ignore-output",
    "NBVAL_SKIP": "nbval-skip",
    "NBVAL_RAISES_EXCEPTION": "raises-exception",
    "NBVAL_CHECK_OUTPUT": "nbval-check-output",
}
MARKER_LINE = re.compile(r"^\s*#\s*(?P<marker>NBVAL_[A-Z_]+)\s*$")


def untagged(source: str) -> tuple[str, list[str]]:
    """``source`` without its marker comment lines (and the parenthesised comment right after each), and the tags
    they stand for."""
    lines, kept, tags, index = source.split("\n"), [], [], 0
    while index < len(lines):
        match = MARKER_LINE.match(lines[index])
        if match is None:
            kept.append(lines[index])
            index += 1
            continue
        marker = match["marker"]
        if marker not in MARKER_TAGS:
            raise ValueError(f"unknown nbval marker {marker}: expected one of {sorted(MARKER_TAGS)}")
        tags.append(MARKER_TAGS[marker])
        index += 1
        if index < len(lines) and lines[index].lstrip().startswith("# ("):
            while index < len(lines) and not lines[index].rstrip().endswith(")"):
                index += 1
            index += 1
    return "\n".join(kept), tags


def marker_cells(notebook: dict) -> list[int]:
    """Indices of the code cells whose code holds an nbval marker comment."""
    return [index for index, cell in enumerate(notebook["cells"]) if cell["cell_type"] == "code"
            and any(MARKER_LINE.match(line) for line in cell_source(cell).split("\n"))]


def move_markers(notebook: dict) -> int:
    """Move every marker comment of ``notebook`` into its cell's tags, in place; return how many cells changed."""
    changed = marker_cells(notebook)
    for index in changed:
        cell = notebook["cells"][index]
        source, tags = untagged(cell_source(cell))
        cell["source"] = source
        existing = cell.setdefault("metadata", {}).setdefault("tags", [])
        existing += [tag for tag in tags if tag not in existing]
    return len(changed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true", help="list marker comments; change nothing")
    args = parser.parse_args(argv)
    paths = args.paths or chapter_notebooks()
    left = []
    for path in paths:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if args.check:
            left += [f"{path} cell {index}: an nbval marker comment (make it a tag: python -m tools.nbmarkers {path})"
                     for index in marker_cells(notebook)]
            continue
        moved = move_markers(notebook)
        if moved:
            from tools.nbexec import dumps, normalize_notebook

            path.write_text(dumps(normalize_notebook(notebook)), encoding="utf-8")
        print(f"{path}: {moved} cell(s) now tagged")
    for line in left:
        print(line, file=sys.stderr)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
