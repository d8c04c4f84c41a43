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


def _probe_notebook(path, stored: str, expected: str) -> None:
    cell = nbformat.v4.new_code_cell(
        "import torch\nprint(torch.backends.cpu.get_cpu_capability().lower() == " + repr(expected) + ")",
        outputs=[nbformat.v4.new_output("stream", name="stdout", text="True\n")], execution_count=1)
    notebook = nbformat.v4.new_notebook(cells=[cell])
    notebook.metadata["annotated"] = {"outputs_computed_under": {"cpu_capability": stored}}
    nbformat.write(notebook, path)


def test_each_notebook_kernel_runs_under_a_capability_its_own_outputs_were_not_stored_under():
    """Two notebooks stored under different capabilities, run by nbval in one session with the per-notebook switch:
    each kernel dispatches to the capability chosen for it (the stored "True" fails if it does not)."""
    import subprocess
    import sys
    from pathlib import Path

    native = native_capability()
    stores = [c for c in ("avx512", "avx2", "default") if c != "default" or native != "default"][:2]
    folder = Path(__file__).resolve().parent.parent / "_build" / "isa-probe"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, stored in enumerate(stores):
        path = folder / f"probe_{index}.ipynb"
        _probe_notebook(path, stored, validation_capability(native, [stored]))
        paths.append(path)
    wrong = folder / "probe_wrong.ipynb"  # the planted fault: expects the capability it was stored under
    _probe_notebook(wrong, stores[0], stores[0] if stores[0] != native else "default")
    env = {key: value for key, value in os.environ.items() if key not in ISA_VARIABLES}
    run = lambda *files: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
         *map(str, files)], capture_output=True, text=True, env={**env, "ANNOTATED_VALIDATE_ISA": "1"},
        cwd=folder.parent.parent)
    good = run(*paths)
    assert good.returncode == 0, good.stdout[-2000:]
    assert run(wrong).returncode == 1
