"""Export the marked code cells of the chapter notebooks into the ``annotated`` package.

Directives (nbdev's vocabulary) sit on the first lines of a code cell:

``#| default_exp ddpm``  once per notebook: the module ``annotated/ddpm.py`` it exports to
                         (``rl.tabular`` exports to ``annotated/rl/tabular.py`` in the sub-package ``annotated.rl``).
``#| export``            the cell goes into the module; its public names are listed in ``__all__``.
``#| exporti``           the cell goes into the module; its names stay out of ``__all__``.
``#| hide``              a reader's aid that the exporter ignores (kept for nbdev compatibility).

Usage::

    python -m tools.nbexport            # write annotated/ from notebooks/*.ipynb
    python -m tools.nbexport --check    # fail, naming the module, if annotated/ is out of date

Notebooks in ``notebooks/drafts/`` are never exported. The output depends only on the cells' sources and
order (not on cell ids or outputs), so re-exporting is byte-identical.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "annotated"
DIRECTIVE = re.compile(r"^\s*#\|\s*(?P<name>[\w-]+)(?:\s+(?P<arg>.*?))?\s*$")
KNOWN_DIRECTIVES = {"default_exp", "export", "exporti", "hide"}
MAGIC_OR_SHELL = re.compile(r"^\s*(%|!)")
MODULE_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")  # a module, or a module of one sub-package


class ExportError(ValueError):
    """A notebook cannot be exported as written; the message names the notebook and cell."""


@dataclass
class ExportedCell:
    index: int
    source: str
    public: bool


@dataclass
class NotebookExport:
    notebook: Path
    module: str | None = None
    title: str = ""
    cells: list[ExportedCell] = field(default_factory=list)


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def split_directives(source: str, where: str) -> tuple[list[tuple[str, str]], str]:
    """Split a cell into its leading directives and the code after them.

    A directive anywhere below the first code line is an error: nbdev would ignore it silently, which is how a
    cell meant for export ends up missing from the package.
    """
    lines = source.splitlines()
    directives: list[tuple[str, str]] = []
    body_start = len(lines)
    for index, line in enumerate(lines):
        match = DIRECTIVE.match(line)
        if not match:
            body_start = index
            break
        directives.append((match["name"], match["arg"] or ""))
    for offset, line in enumerate(lines[body_start:], start=body_start + 1):
        if DIRECTIVE.match(line):
            raise ExportError(
                f"{where}: directive {line.strip()!r} on line {offset}; directives must be the first lines of a cell"
            )
    for name, _ in directives:
        if name not in KNOWN_DIRECTIVES:
            raise ExportError(f"{where}: unknown directive '#| {name}', expected one of {sorted(KNOWN_DIRECTIVES)}")
    return directives, "\n".join(lines[body_start:])


def notebook_title(cells: list[dict]) -> str:
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for line in cell_source(cell).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


def read_notebook(path: Path, root: Path = REPO_ROOT) -> NotebookExport:
    """Collect the exported cells of one notebook, checking every rule the exporter enforces."""
    relative = path.resolve().relative_to(root.resolve()).as_posix()
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    export = NotebookExport(notebook=Path(relative), title=notebook_title(cells))
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        where = f"{relative} cell {index}"
        directives, body = split_directives(cell_source(cell), where)
        names = [name for name, _ in directives]
        for name, arg in directives:
            if name == "default_exp":
                if export.module is not None:
                    raise ExportError(f"{where}: second '#| default_exp' (already exporting to {export.module!r})")
                if not MODULE_NAME.match(arg):
                    raise ExportError(
                        f"{where}: '#| default_exp' needs a lower-case module name (or package.module), got {arg!r}"
                    )
                export.module = arg
        if "export" in names and "exporti" in names:
            raise ExportError(f"{where}: a cell is either '#| export' or '#| exporti', not both")
        if "export" not in names and "exporti" not in names:
            continue
        for number, line in enumerate(body.splitlines(), start=1):
            if MAGIC_OR_SHELL.match(line):
                raise ExportError(
                    f"{where}: exported cells must be plain Python, found magic/shell line {number}: {line.strip()!r}"
                )
        try:
            ast.parse(body)
        except SyntaxError as error:
            raise ExportError(f"{where}: exported cell is not valid Python: {error}") from error
        export.cells.append(ExportedCell(index=index, source=body.strip("\n"), public="export" in names))
    if export.cells and export.module is None:
        raise ExportError(f"{relative}: has exported cells but no '#| default_exp <module>' directive")
    return export


def public_names(source: str) -> list[str]:
    """Top-level names a cell defines that do not start with an underscore."""
    names: list[str] = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.extend(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return [name for name in names if not name.startswith("_")]


def render_module(export: NotebookExport) -> str:
    """The text of the generated module: header, docstring, ``__all__`` and the cells in notebook order."""
    exported_names = _public_names_of(export)
    docstring = export.title or f"Exported from {export.notebook.as_posix()}."
    parts = [
        f"# AUTOGENERATED from {export.notebook.as_posix()} by tools/nbexport.py: do not edit.\n"
        "# Edit the notebook, then run `python -m tools.nbexport`.\n",
        f'"""{docstring}"""\n',
        "__all__ = [" + ", ".join(repr(name) for name in exported_names) + "]\n",
    ]
    for cell in export.cells:
        body = "\n".join(line.rstrip() for line in cell.source.splitlines())
        parts.append(f"# %% {export.notebook.as_posix()} cell {cell.index}\n{body}\n")
    return "\n\n".join(parts)


def render_init(exports: list[NotebookExport]) -> str:
    lines = [
        "# AUTOGENERATED by tools/nbexport.py: do not edit.\n",
        '"""annotated: the importable code of the annotated machine-learning book.\n\nModules, one per chapter:\n',
    ]
    for export in exports:
        lines.append(f"- ``annotated.{export.module}``: {export.title or export.notebook.as_posix()}")
    lines.append('"""\n\n__version__ = "0.1.0"\n')
    return "\n".join(lines)


def render_subpackage_init(package: str, exports: list[NotebookExport]) -> str:
    """A sub-package re-exports the public names of its modules, so ``from annotated.rl import x`` works."""
    owners: dict[str, str] = {}
    for export in exports:
        assert export.module is not None
        for name in _public_names_of(export):
            if name in owners:
                raise ExportError(
                    f"'{name}' is public in both annotated.{owners[name]} and annotated.{export.module}; "
                    f"the sub-package annotated.{package} would shadow one of them"
                )
            owners[name] = export.module
    modules = [export.module.split(".", 1)[1] for export in exports if export.module]
    lines = [
        "# AUTOGENERATED by tools/nbexport.py: do not edit.\n",
        f'"""annotated.{package}: ' + ", ".join(f"``{module}``" for module in modules) + ' (their public names)."""\n',
    ]
    lines += [f"from .{module} import *  # noqa: F403" for module in sorted(modules)]  # in import order
    lines += ["", ""]  # two blank lines after imports, as in every generated module
    lines.append("__all__ = [" + ", ".join(repr(name) for name in owners) + "]")
    return "\n".join(lines) + "\n"


def _public_names_of(export: NotebookExport) -> list[str]:
    names: list[str] = []
    for cell in export.cells:
        if cell.public:
            names.extend(name for name in public_names(cell.source) if name not in names)
    return names


def chapter_notebooks(root: Path = REPO_ROOT) -> list[Path]:
    """Chapters that are exported and tested: ``notebooks/*.ipynb``, never ``notebooks/drafts/``."""
    return sorted((root / "notebooks").glob("*.ipynb"))


def build_package(root: Path = REPO_ROOT) -> dict[str, str]:
    """Map each generated file (path relative to the package folder, ``/``-separated) to its text."""
    exports = [export for export in (read_notebook(path, root) for path in chapter_notebooks(root)) if export.module]
    owners: dict[str, Path] = {}
    for export in exports:
        assert export.module is not None
        if export.module in owners:
            raise ExportError(
                f"module {export.module!r} is exported by both {owners[export.module].as_posix()} "
                f"and {export.notebook.as_posix()}; each module has exactly one notebook"
            )
        owners[export.module] = export.notebook
    packages = sorted({module.split(".")[0] for module in owners if "." in module})
    for package in packages:
        if package in owners:
            raise ExportError(f"'{package}' is both a module ({owners[package].as_posix()}) and a sub-package")
    files = {f"{export.module.replace('.', '/')}.py": render_module(export) for export in exports}
    for package in packages:
        members = [export for export in exports if export.module.startswith(package + ".")]
        files[f"{package}/__init__.py"] = render_subpackage_init(package, members)
    files["__init__.py"] = render_init(exports)
    return files


def generated_files_on_disk(package_dir: Path) -> set[str]:
    return {
        path.relative_to(package_dir).as_posix()
        for path in package_dir.rglob("*.py")
        if "AUTOGENERATED" in path.read_text(encoding="utf-8")[:200]
    }


def python_files_on_disk(package_dir: Path) -> set[str]:
    return {path.relative_to(package_dir).as_posix() for path in package_dir.rglob("*.py")}


def write_package(root: Path = REPO_ROOT) -> list[str]:
    package_dir = root / PACKAGE
    package_dir.mkdir(exist_ok=True)
    files = build_package(root)
    for stale in generated_files_on_disk(package_dir) - set(files):
        (package_dir / stale).unlink()
    for name, text in files.items():
        (package_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (package_dir / name).write_text(text, encoding="utf-8")
    return sorted(files)


def check_package(root: Path = REPO_ROOT) -> list[str]:
    """Problems that make ``annotated/`` differ from what the notebooks export (empty when in sync)."""
    package_dir = root / PACKAGE
    files = build_package(root)
    problems = []
    for name, text in sorted(files.items()):
        path = package_dir / name
        if not path.exists():
            problems.append(f"{PACKAGE}/{name} is missing: run `python -m tools.nbexport`")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{PACKAGE}/{name} differs from its notebook: run `python -m tools.nbexport`")
    generated = generated_files_on_disk(package_dir)
    for stale in sorted(generated - set(files)):
        problems.append(f"{PACKAGE}/{stale} is generated but no notebook exports it any more: delete it")
    for name in sorted(python_files_on_disk(package_dir) - generated - set(files)):
        problems.append(f"{PACKAGE}/{name} is not generated from a notebook: {PACKAGE}/ holds exported code only")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if annotated/ is out of date; write nothing")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = check_package()
            for problem in problems:
                print(problem, file=sys.stderr)
            if not problems:
                print(f"{PACKAGE}/ is in sync with notebooks/")
            return 1 if problems else 0
        written = write_package()
    except ExportError as error:
        print(f"export failed: {error}", file=sys.stderr)
        return 2
    print(f"exported {', '.join(f'{PACKAGE}/{name}' for name in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
