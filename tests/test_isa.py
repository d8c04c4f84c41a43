"""Which instruction set CI validates the stored outputs under (tools/isa.py), and what the executor records."""

from __future__ import annotations

import json
import os

import nbformat
import pytest

from tools.isa import (
    ISA_VARIABLES,
    native_capability,
    stored_capabilities,
    torch_capability,
    validation_capability,
    validation_env,
)
from tools.nbexec import execute
from tools.nbexport import chapter_notebooks


@pytest.mark.parametrize(
    ("native", "stored", "expected"),
    [
        ("avx512", {"avx512"}, "avx2"),       # the book's first machine: stored and validated on AVX-512 hardware
        ("avx2", {"avx512"}, "avx2"),         # stored elsewhere under AVX-512, validated on an AVX2 machine
        ("avx2", {"avx2"}, "default"),        # stored on this kind of machine: ATen's portable kernels
        ("avx512", {"avx2", "avx512"}, "default"),
        ("avx512", {"default"}, "avx512"),
        ("sve256", {"sve256"}, "default"),    # ARM
    ],
)
def test_validation_uses_a_capability_no_notebook_was_stored_under(native, stored, expected):
    assert validation_capability(native, stored) == expected


def test_no_capability_left_to_validate_under_is_an_error():
    with pytest.raises(ValueError, match="every capability this machine runs"):
        validation_capability("avx2", {"avx2", "default"})
    with pytest.raises(ValueError, match="no environment known"):
        validation_env("sve256")


def test_the_validation_environment_really_changes_what_torch_dispatches_to():
    stored = set(stored_capabilities(chapter_notebooks()).values())
    chosen = validation_capability(native_capability(), stored)
    clean = {key: value for key, value in os.environ.items() if key not in ISA_VARIABLES}
    assert torch_capability({**clean, **validation_env(chosen)}) == chosen not in stored


def test_the_executor_records_the_capability_that_computed_the_outputs(tmp_path, monkeypatch):
    path = tmp_path / "tiny.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1 + 1)")])
    nbformat.write(notebook, path)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    execute(path)
    stored = json.loads(path.read_text(encoding="utf-8"))
    record = stored["metadata"]["annotated"]["outputs_computed_under"]
    assert record["cpu_capability"] == "default" and record["torch"].startswith("2.")
    assert stored["cells"][0]["outputs"][0]["text"] == "2\n"
