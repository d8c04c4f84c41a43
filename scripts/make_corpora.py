"""Make the book's text snapshots from one Python's standard library, and check them against their stored hashes.

Chapters 02, 03 and 04 train on text from Python's standard library. Read from the running interpreter, that text
changes with the reader's Python (3.12's library has other files and other docstrings than 3.11's), and so would every
corpus size, result and committed run. So the text is taken once, from the Python named in ``SOURCE_PYTHON``, and
shipped with the package in ``annotated/data/`` as Parquet files that ``datasets`` reads on any Python:

* ``stdlib_source.parquet``: every top-level ``*.py`` file of the library (``file``, and ``source`` as raw bytes),
  sorted by name. The Reformer's character-level corpus (``annotated.reformer.stdlib_source_text``).
* ``stdlib_docstrings.parquet``: the docstrings of every ``*.py`` file under the library (sorted by path, packages
  in ``SKIPPED_PACKAGES`` left out), one row per module (``kind="module"``, its docstring or ``""``, also for a file
  that does not parse) and one per class or function that has a docstring, in ``ast.walk`` order (``module``,
  ``kind``, ``name``, ``docstring`` as ``ast.get_docstring`` cleans it). The docstring summarisation task and the
  tokenizer corpus of the warm-starting chapter, and the open-ended language model of the encoder-decoder chapter.

The text is the Python Software Foundation's, under the PSF License Agreement: ``annotated/data/LICENSE-PSF.txt`` is
the ``LICENSE.txt`` of the library it was taken from. ``annotated/data/corpora.json`` records, per snapshot, the rows
and a SHA-256 of their content (independent of the Parquet writer's version).

    python -m scripts.make_corpora --check    # the shipped snapshots still have their stored hashes (any Python)
    python -m scripts.make_corpora            # remake them from this interpreter's library (SOURCE_PYTHON only);
                                              # fails unless they come out with the stored hashes
    python -m scripts.make_corpora --update   # remake and store new hashes (a deliberate change of the corpora)
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import platform
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any


ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "annotated" / "data"
MANIFEST = DATA / "corpora.json"
SOURCE_PYTHON = "3.11.7"
SKIPPED_PACKAGES = {"test", "tests", "idlelib", "site-packages", "dist-packages", "lib2to3", "turtledemo"}
SNAPSHOTS = ("stdlib_source", "stdlib_docstrings")
DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
KINDS = {ast.Module: "module", ast.ClassDef: "class", ast.FunctionDef: "function", ast.AsyncFunctionDef: "function"}


def source_rows(stdlib: Path) -> list[dict[str, Any]]:
    """One row per top-level ``*.py`` file of ``stdlib``, sorted by name: its name and its bytes."""
    return [{"file": path.name, "source": path.read_bytes()} for path in sorted(stdlib.glob("*.py"))]


def docstring_rows(stdlib: Path) -> list[dict[str, Any]]:
    """One row per module (docstring or ``""``) and per documented class or function, files sorted by path."""
    rows = []
    for path in sorted(stdlib.rglob("*.py")):
        relative = path.relative_to(stdlib)
        if SKIPPED_PACKAGES & set(relative.parts):
            continue
        module = ".".join(relative.with_suffix("").parts)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            rows.append({"module": module, "kind": "module", "name": module, "docstring": ""})
            continue
        for node in ast.walk(tree):
            if not isinstance(node, DOCUMENTED):
                continue
            docstring = ast.get_docstring(node) or ""
            if isinstance(node, ast.Module):
                rows.append({"module": module, "kind": "module", "name": module, "docstring": docstring})
            elif docstring:
                rows.append({"module": module, "kind": KINDS[type(node)], "name": node.name, "docstring": docstring})
    return rows


def content_hash(rows: list[dict[str, Any]]) -> str:
    """SHA-256 of the rows' values in order, each length-prefixed: the same for the same rows whatever wrote them."""
    digest = hashlib.sha256()
    for row in rows:
        for key in sorted(row):
            value = row[key] if isinstance(row[key], bytes) else str(row[key]).encode("utf-8")
            digest.update(key.encode() + b"\0" + len(value).to_bytes(8, "little") + value)
    return digest.hexdigest()


def read_rows(name: str) -> list[dict[str, Any]]:
    """The rows of a shipped snapshot, as the package reads them (``annotated.utils.load_text_snapshot``)."""
    from annotated.utils import load_text_snapshot

    return list(load_text_snapshot(name))


def check() -> list[str]:
    """Problems with the shipped snapshots: a missing file or rows whose hash is not the stored one."""
    manifest = json.loads(MANIFEST.read_text())
    problems = []
    for name in SNAPSHOTS:
        if not (DATA / f"{name}.parquet").is_file():
            problems.append(f"{name}.parquet is missing")
            continue
        rows = read_rows(name)
        stored = manifest["snapshots"][name]
        if len(rows) != stored["rows"] or content_hash(rows) != stored["sha256"]:
            problems.append(f"{name}: {len(rows)} rows with hash {content_hash(rows)[:12]}, stored "
                            f"{stored['rows']} rows with hash {stored['sha256'][:12]}")
    return problems


def make(update: bool) -> list[str]:
    """Write the snapshots from this interpreter's library; the problems if their hashes are not the stored ones."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if platform.python_version() != SOURCE_PYTHON and not update:
        raise SystemExit(f"the snapshots are made from Python {SOURCE_PYTHON}'s library; this is "
                         f"{platform.python_version()} (pass --update to change the corpora on purpose)")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    tables = {"stdlib_source": source_rows(stdlib), "stdlib_docstrings": docstring_rows(stdlib)}
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {"snapshots": {}}
    problems = []
    DATA.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        digest = content_hash(rows)
        stored = manifest["snapshots"].get(name, {})
        if not update and stored.get("sha256") != digest:
            problems.append(f"{name}: made {len(rows)} rows with hash {digest[:12]}, stored "
                            f"{stored.get('rows')} rows with hash {str(stored.get('sha256'))[:12]}")
        table = pa.Table.from_pylist(rows)
        pq.write_table(table, DATA / f"{name}.parquet", compression="zstd", compression_level=19)
        manifest["snapshots"][name] = {"rows": len(rows), "sha256": digest, "columns": table.column_names}
    if update:
        shutil.copyfile(stdlib / "LICENSE.txt", DATA / "LICENSE-PSF.txt")
        manifest.update(python=platform.python_version(), made_by="python -m scripts.make_corpora",
                        licence="PSF-2.0 (Python Software Foundation License Agreement): LICENSE-PSF.txt",
                        source="the standard library of CPython " + platform.python_version())
        MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="check the shipped snapshots against their hashes")
    group.add_argument("--update", action="store_true", help="remake from this Python and store new hashes")
    args = parser.parse_args(argv)
    problems = check() if args.check else make(args.update)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print("snapshots " + ("match" if not args.update else "written with") + " their stored hashes")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
