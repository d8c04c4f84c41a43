"""The executor's normalisation and its check: what a stored notebook must look like to pass CI."""

from __future__ import annotations

import json

import nbformat

from tools.nbexec import dumps, normalize_notebook, problems_in
from tools.nbexport import chapter_notebooks


def executed_notebook() -> dict:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata.update({"widgets": {"state": {}}, "colab": {"provenance": []}, "accelerator": "GPU"})
    notebook.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    notebook.metadata["annotated"] = {"outputs_computed_under": {"cpu_capability": "avx2", "machine": "x86_64"}}
    first = nbformat.v4.new_code_cell("print(1)", execution_count=1)
    first.metadata.update({"execution": {"iopub.execute_input": "2026-01-01"}, "tags": ["nbval-skip"], "colab": {}})
    first.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    widget = nbformat.v4.new_code_cell("bar()", execution_count=2)
    widget.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"application/vnd.jupyter.widget-view+json": {"model_id": "abc"}, "text/plain": "bar"},
        )
    ]
    return json.loads(json.dumps(notebook | {"cells": [first, widget, nbformat.v4.new_markdown_cell("text")]}))


def test_normalisation_drops_volatile_metadata_and_keeps_outputs():
    normalized = normalize_notebook(executed_notebook())
    assert set(normalized["metadata"]) == {"kernelspec", "language_info", "annotated"}
    assert normalized["metadata"]["language_info"] == {"name": "python"}
    first, widget, _ = normalized["cells"]
    assert first["metadata"] == {"tags": ["nbval-skip"]}
    assert first["outputs"][0]["text"] == "1\n" and first["execution_count"] == 1
    assert widget["outputs"][0]["data"] == {"text/plain": "bar"}


def test_normalisation_is_idempotent():
    once = normalize_notebook(executed_notebook())
    assert dumps(normalize_notebook(once)) == dumps(once)


def test_check_rejects_unnormalised_out_of_order_and_error_outputs(tmp_path):
    path = tmp_path / "nb.ipynb"
    raw = executed_notebook()
    path.write_text(json.dumps(raw))
    assert any("not normalised" in p for p in problems_in(path))

    good = normalize_notebook(raw)
    path.write_text(dumps(good))
    assert problems_in(path) == []

    good["cells"][1]["execution_count"] = 5
    path.write_text(dumps(good))
    assert any("execution count 5, expected 2" in p for p in problems_in(path))

    good["cells"][1]["execution_count"] = 2
    unrecorded = {**good, "metadata": {key: value for key, value in good["metadata"].items() if key != "annotated"}}
    path.write_text(dumps(unrecorded))
    assert any("does not record the CPU capability" in p for p in problems_in(path))

    good["cells"][1]["outputs"] = [{"output_type": "error", "ename": "E", "evalue": "", "traceback": []}]
    path.write_text(dumps(good))
    assert any("stored output is an error" in p for p in problems_in(path))


def test_repository_notebooks_are_executed_and_normalised():
    assert [problem for path in chapter_notebooks() for problem in problems_in(path)] == []


def test_check_accepts_an_error_that_a_cell_raises_on_purpose(tmp_path):
    path = tmp_path / "nb.ipynb"
    notebook = normalize_notebook(executed_notebook())
    notebook["cells"][1]["outputs"] = [{"output_type": "error", "ename": "ValueError", "evalue": "", "traceback": []}]
    notebook["cells"][1]["metadata"]["tags"] = ["raises-exception"]
    path.write_text(dumps(notebook))
    assert problems_in(path) == []
