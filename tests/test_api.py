"""Every public name of the package documents itself: the API reference shows these docstrings to users."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import types

import pytest
import yaml

import annotated
from tools.nbexport import REPO_ROOT


def package_modules() -> list[str]:
    """Every module of ``annotated`` that defines names (sub-packages only re-export theirs)."""
    names = [info.name for info in pkgutil.walk_packages(annotated.__path__, "annotated.") if not info.ispkg]
    return sorted(name for name in names if not name.startswith("annotated.data"))


def own_docstring(value: object) -> str:
    """The docstring written for ``value`` itself: not a base class's, nor the signature a dataclass makes up."""
    doc = vars(value).get("__doc__") if inspect.isclass(value) else value.__doc__
    if dataclasses.is_dataclass(value) and doc and doc.startswith(f"{value.__name__}("):
        return ""
    return (doc or "").strip()


def undocumented(module: types.ModuleType) -> list[str]:
    """The classes and functions in ``module.__all__`` without a docstring of their own."""
    return [name for name in getattr(module, "__all__", [])
            if (inspect.isclass(getattr(module, name)) or inspect.isfunction(getattr(module, name)))
            and not own_docstring(getattr(module, name))]


def test_the_package_has_its_chapters_modules():
    assert {"annotated.utils", "annotated.ddpm", "annotated.rl.deep"} <= set(package_modules())


@pytest.mark.parametrize("name", package_modules())
def test_every_public_class_and_function_has_a_docstring(name):
    module = importlib.import_module(name)
    assert module.__all__, f"{name} declares no public names"
    assert not undocumented(module), f"{name}: no docstring for {undocumented(module)}"


def test_a_public_function_without_a_docstring_is_found():
    module = types.ModuleType("planted")

    def documented() -> None:
        """Does nothing."""

    def silent() -> None:
        pass

    @dataclasses.dataclass
    class Settings:  # a dataclass makes up a docstring from its signature: that is not documentation
        size: int = 1

    class Child(Settings):
        pass

    module.documented, module.silent, module.Settings, module.Child, module.CONSTANT = (
        documented, silent, Settings, Child, 3)
    module.__all__ = ["documented", "silent", "Settings", "Child", "CONSTANT"]
    assert undocumented(module) == ["silent", "Settings", "Child"]


def test_every_module_has_an_api_page_in_the_book():
    toc = (REPO_ROOT / "_toc.yml").read_text(encoding="utf-8")
    listed = {entry.removeprefix("book/api/") for entry in _toc_files(yaml.safe_load(toc))}
    for name in package_modules():
        page = name.removeprefix("annotated.").replace(".", "_")
        assert page in listed, f"{name} has no page book/api/{page}.md in _toc.yml"
        text = (REPO_ROOT / "book" / "api" / f"{page}.md").read_text(encoding="utf-8")
        assert f".. automodule:: {name}\n" in text, f"book/api/{page}.md does not document {name}"


def _toc_files(node: object) -> list[str]:
    """Every ``file`` entry of a parsed _toc.yml, at any depth."""
    if isinstance(node, dict):
        return ([node["file"]] if "file" in node else []) + [f for value in node.values() for f in _toc_files(value)]
    if isinstance(node, list):
        return [f for item in node for f in _toc_files(item)]
    return []
