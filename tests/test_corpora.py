"""The text snapshots the chapters train on: shipped, unchanged, the same on every Python, and the only text read.

``scripts/make_corpora.py`` made them from CPython 3.11.7's standard library; these tests check the shipped rows
against the stored hashes, remake them where that Python runs, and fail when a chapter, script or package module
reads text from the running interpreter's own standard library instead.
"""

import json
import platform
import re
from pathlib import Path

import pytest

from annotated.utils import TEXT_SNAPSHOTS, load_text_snapshot, text_snapshot_path
from scripts import make_corpora


ROOT = Path(__file__).resolve().parent.parent
# What reaches the running interpreter's own files: its paths (sysconfig, site, sys.prefix and friends) or a standard
# module's file (``os.__file__``); ``annotated.__file__`` and a script's own ``__file__`` are the project's files.
READS_INTERPRETER = re.compile(
    r"\bsysconfig\b|\bsite\.getsitepackages\b|\bsys\.(?:base_)?(?:exec_)?prefix\b|\bsys\.stdlib_module_names\b"
    r"|\b(?!annotated\b)[a-z_][a-z0-9_]*\.__file__\b"
)
MAKER = ROOT / "scripts" / "make_corpora.py"


def code_sources() -> dict[str, str]:
    """Every code cell of every chapter, and every module of ``scripts/`` and ``annotated/``, by where it is."""
    sources = {}
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for index, cell in enumerate(json.loads(notebook.read_text())["cells"]):
            if cell["cell_type"] == "code":
                source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
                sources[f"{notebook.name} cell {index}"] = source
    for folder in ("scripts", "annotated"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path != MAKER:
                sources[str(path.relative_to(ROOT))] = path.read_text()
    return sources


def interpreter_reads(sources: dict[str, str]) -> list[str]:
    return [f"{where}: {match.group(0)}" for where, source in sources.items()
            for match in READS_INTERPRETER.finditer(source)]


def test_no_chapter_script_or_module_reads_the_interpreters_standard_library():
    assert interpreter_reads(code_sources()) == []


@pytest.mark.parametrize("planted", [
    "root = Path(sysconfig.get_paths()['stdlib'])",
    "files = sorted(Path(os.__file__).parent.glob('*.py'))",
    "lib = Path(sys.base_prefix) / 'lib'",
])
def test_the_scan_finds_a_planted_read(planted):
    assert interpreter_reads({"planted": planted}) == [f"planted: {READS_INTERPRETER.search(planted).group(0)}"]


def test_the_scan_leaves_the_projects_own_files_alone():
    assert interpreter_reads({"ok": "ROOT = Path(__file__).parent\npath = Path(annotated.__file__).parent"}) == []


def test_shipped_snapshots_have_their_stored_hashes():
    assert make_corpora.check() == []


def test_a_changed_row_fails_the_check(monkeypatch):
    rows = make_corpora.read_rows("stdlib_source")
    rows[3] = {**rows[3], "source": rows[3]["source"] + b"\n"}
    monkeypatch.setattr(make_corpora, "read_rows", lambda name: rows if name == "stdlib_source" else [])
    problems = make_corpora.check()
    assert any(p.startswith("stdlib_source:") for p in problems) and any(p.startswith("stdlib_docstrings:")
                                                                        for p in problems)


@pytest.mark.skipif(platform.python_version() != make_corpora.SOURCE_PYTHON,
                    reason=f"the snapshots are made from CPython {make_corpora.SOURCE_PYTHON}'s library")
def test_the_source_python_remakes_the_same_rows():
    stdlib = Path(make_corpora.sysconfig.get_paths()["stdlib"])
    manifest = json.loads(make_corpora.MANIFEST.read_text())["snapshots"]
    for name, rows in [("stdlib_source", make_corpora.source_rows(stdlib)),
                       ("stdlib_docstrings", make_corpora.docstring_rows(stdlib))]:
        assert (len(rows), make_corpora.content_hash(rows)) == (manifest[name]["rows"], manifest[name]["sha256"])


def test_manifest_names_source_and_licence():
    manifest = json.loads(make_corpora.MANIFEST.read_text())
    assert manifest["python"] == make_corpora.SOURCE_PYTHON and "PSF" in manifest["licence"]
    assert "PYTHON SOFTWARE FOUNDATION LICENSE" in (make_corpora.DATA / "LICENSE-PSF.txt").read_text()
    assert set(manifest["snapshots"]) == set(TEXT_SNAPSHOTS)


def test_loader_reads_rows_and_refuses_unknown_names():
    source = load_text_snapshot("stdlib_source")
    assert source.column_names == ["file", "source"] and isinstance(source[0]["source"], bytes)
    assert text_snapshot_path("stdlib_docstrings").is_file()
    with pytest.raises(ValueError, match="stdlib_source"):
        load_text_snapshot("crime_and_punishment")


def test_corpus_sizes_are_the_chapters():
    """What chapters 02 and 04 print (their stored outputs), on whatever Python runs this test."""
    from annotated.reformer import stdlib_source_text
    from annotated.warm_starting import docstring_pairs, split_by_module

    text = stdlib_source_text(max_bytes=3_000_000)
    assert len(text) == 3_000_000 and text.startswith(b"# file: __future__.py\n")
    train, test = split_by_module(docstring_pairs())
    assert (len(train), len(test)) == (1896, 306)
