"""The seed sweeps of ``tools.nbspread``: which cells raised under a variant, and sampling assertions swept over
sampling seeds without changing what the rest of the notebook computes."""

from __future__ import annotations

import json

import torch

import tools.nbspread as nbspread


def code_cell(cell_id: str, source: str, tags: tuple[str, ...] = ()) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": cell_id, "metadata": {"tags": list(tags)},
            "outputs": [], "source": source}


def write_notebook(path, cells: list[dict]) -> None:
    path.write_text(json.dumps({
        "cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")


def first_draw(seed: int) -> int:
    return int(torch.randint(0, 1_000_000, (1,), generator=torch.Generator().manual_seed(seed)))


DRAW = """\
import torch
draw = int(torch.randint(0, 1_000_000, (1,), generator=torch.Generator().manual_seed(2)))
noise = torch.rand(3)  # the global stream too: a sweep must leave it where a plain run leaves it
print(draw)
assert draw % 2 == 0, draw
"""


def test_sampling_seeds_are_shifted_in_draws_but_not_in_training_seeds():
    source = "g = torch.Generator().manual_seed(3)\nevaluate(agent, seed=123_456)\nseed_everything(0)"
    shifted = nbspread.shift_sampling_seeds(source, 2)
    assert "manual_seed(3 + 2)" in shifted and "seed=123_456 + 2" in shifted and "seed_everything(0)" in shifted


def test_run_records_the_cells_that_raised_and_sweeps_a_sampling_assertion(tmp_path, monkeypatch):
    path = tmp_path / "chapter.ipynb"
    write_notebook(path, [
        code_cell("setup", "import torch\n_ = torch.manual_seed(0)"),
        code_cell("draw", DRAW),
        code_cell("after", "print(torch.rand(1).item())"),  # global random state after the swept cell
        code_cell("broken", "raise ValueError('planted failure')"),
        code_cell("on-purpose", "raise KeyError('shown to the reader')", tags=("raises-exception",)),
    ])
    monkeypatch.setitem(nbspread.SAMPLING_SWEEPS, "chapter.ipynb", [(("draw",), ("draw", "draw % 2"))])
    nbspread.run_variant(path, tmp_path / "plain", None, 0)
    nbspread.run_variant(path, tmp_path / "swept", None, 0, sampling_draws=6)
    plain = json.loads((tmp_path / "plain" / "chapter.json").read_text(encoding="utf-8"))
    swept = json.loads((tmp_path / "swept" / "chapter.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in plain["raised"]] == ["broken"] and "planted failure" in plain["raised"][0]["error"]
    assert plain["sampling_sweeps"] == {}
    draws = swept["sampling_sweeps"]["draw"]
    assert [d["sampling_seed_shift"] for d in draws] == [1, 2, 3, 4, 5, 0]
    assert [d["measures"]["draw"] for d in draws] == [first_draw(2 + shift) for shift in [1, 2, 3, 4, 5, 0]]
    assert [d["raised"] is not None for d in draws] == [first_draw(2 + s) % 2 == 1 for s in [1, 2, 3, 4, 5, 0]]
    texts = [[nbspread.cell_text(cell) for cell in json.loads((tmp_path / run / "chapter.ipynb").read_text())["cells"]]
             for run in ("plain", "swept")]
    assert texts[0] == texts[1], "a swept notebook computes what a plain run computes"
    lines = nbspread.summary([tmp_path / "plain", tmp_path / "swept"])
    assert any("cell 3 (broken): ValueError: planted failure" in line for line in lines)
    passed = sum(first_draw(2 + s) % 2 == 0 for s in range(6))
    assert any(f"chapter.ipynb draw | {passed}/6" in line for line in lines), lines


def test_a_sweep_needs_a_literal_sampling_seed(tmp_path, monkeypatch):
    path = tmp_path / "chapter.ipynb"
    write_notebook(path, [code_cell("draw", "draw = 4")])
    monkeypatch.setitem(nbspread.SAMPLING_SWEEPS, "chapter.ipynb", [(("draw",), ("draw",))])
    try:
        nbspread.run_variant(path, tmp_path / "swept", None, 0, sampling_draws=3)
    except ValueError as error:
        assert "literal seed" in str(error)
    else:
        raise AssertionError("a cell without a sampling seed was swept")


def test_every_registered_sweep_and_seed_function_names_what_its_notebook_has():
    from tools.nbexport import REPO_ROOT, cell_source

    for name, sweeps in nbspread.SAMPLING_SWEEPS.items():
        cells = {c.get("id"): cell_source(c) for c in json.loads((REPO_ROOT / "notebooks" / name).read_text())["cells"]}
        for ids, measures in sweeps:
            assert set(ids) <= set(cells), (name, ids)
            assert any(nbspread.SEED_LITERAL.search(cells[i]) for i in ids), (name, ids)
            assert measures
    for registry in (nbspread.SEED_ARGUMENT_FUNCTIONS, nbspread.SEED_CONFIG_FUNCTIONS):
        for name, functions in registry.items():
            sources = "\n".join(cell_source(c) for c in json.loads((REPO_ROOT / "notebooks" / name).read_text())["cells"])
            for function in functions:
                assert f"def {function}(" in sources, (name, function)


CONFIG_CHAPTER = [
    code_cell("config", """\
from dataclasses import asdict, dataclass, replace


@dataclass
class TrainConfig:
    steps: int = 3
    seed: int = 0"""),
    code_cell("train", """\
seen = []


def train(env_id, config=TrainConfig(), *, note=""):
    seen.append(config.seed)
    return config"""),
    code_cell("use", """\
config = TrainConfig(seed=5)
train("a", config)
train("b", replace(config, steps=4))
train("c", config=TrainConfig(seed=7), note="keyword")
train("d")
loaded = TrainConfig(**asdict(config))  # what a loader of a saved configuration does
assert loaded == config and loaded.seed == 5 and isinstance(config, TrainConfig)
assert TrainConfig.__dataclass_fields__["seed"].default == 0
print(seen)"""),
]


def test_seed_offset_moves_a_configuration_seed_once_per_training_call_and_leaves_the_class_alone(tmp_path, monkeypatch):
    """The configuration classes stay classes (07's Hub loader builds one from a saved config.json), and every call
    trains with the seed moved exactly once, however the configuration was made (copied, passed by keyword, default)."""
    path = tmp_path / "chapter.ipynb"
    write_notebook(path, CONFIG_CHAPTER)
    monkeypatch.setitem(nbspread.SEED_CONFIG_FUNCTIONS, "chapter.ipynb", ("train",))
    nbspread.run_variant(path, tmp_path / "out", None, seed_offset=3)
    record = json.loads((tmp_path / "out" / "chapter.json").read_text())
    ran = json.loads((tmp_path / "out" / "chapter.ipynb").read_text())["cells"][2]["outputs"]
    assert record["raised"] == [] and ran[0]["text"] == "[8, 8, 10, 3]\n"


def test_a_run_records_every_expect_call_with_its_cell(tmp_path):
    path = tmp_path / "chapter.ipynb"
    write_notebook(path, [
        code_cell("first", "from annotated.utils import expect\nexpect(0.25, '<', 0.5, 'held-out loss')"),
        code_cell("second", "for k in range(2):\n    expect(0.8 + k / 10, '>', 0.5, 'accuracy')"),
    ])
    nbspread.run_variant(path, tmp_path / "out", None, seed_offset=0)
    record = json.loads((tmp_path / "out" / "chapter.json").read_text())
    assert [(c["id"], c["what"], c["value"]) for c in record["expectations"]] == [
        ("first", "held-out loss", 0.25), ("second", "accuracy", 0.8), ("second", "accuracy", 0.9)]
