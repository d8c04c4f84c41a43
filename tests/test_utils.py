"""annotated.utils: seeding, the scale switch, checkpoints, the resumable loop, figures and data loading."""

from __future__ import annotations

import random
import socket
import time

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from annotated import utils
from annotated.utils import (
    CheckpointState,
    by_scale,
    current_scale,
    fit,
    host_reachable,
    image_grid,
    latest_checkpoint,
    load_checkpoint,
    load_or_embedded,
    loss_curve,
    random_batches,
    save_checkpoint,
    seed_everything,
)


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_seed_everything_replays_every_generator():
    generator = seed_everything(3)
    first, explicit = draws(), torch.rand(2, generator=generator)
    generator = seed_everything(3)
    assert draws() == first and torch.equal(torch.rand(2, generator=generator), explicit)
    seed_everything(4)
    assert draws() != first


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True])
def test_seed_everything_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed must be an int"):
        seed_everything(seed)


def test_scale_switch(monkeypatch):
    monkeypatch.delenv("ANNOTATED_SCALE", raising=False)
    assert current_scale() == "embedded" and by_scale(1, 2) == 1
    monkeypatch.setenv("ANNOTATED_SCALE", "FULL")
    assert current_scale() == "full" and by_scale(1, 2) == 2 and by_scale(1, 2, scale="embedded") == 1
    monkeypatch.setenv("ANNOTATED_SCALE", "huge")
    with pytest.raises(ValueError, match="ANNOTATED_SCALE must be one of"):
        current_scale()


class TiedModel(nn.Module):
    """Dropout (random state matters) and a tied weight: one parameter under two names in the state dict."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(3, 8, bias=False)
        self.hidden = nn.Sequential(nn.ReLU(), nn.Dropout(0.2))
        self.tied = nn.Linear(3, 8, bias=False)
        self.tied.weight = self.embed.weight
        self.head = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(self.embed(x)))


def make_run(lr: float = 1e-2):
    seed_everything(0)
    model = TiedModel()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
    return model, optimizer, scheduler


def regression_data():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=generator)
    return random_batches(x, x.sum(-1, keepdim=True), batch_size=16, seed=1)


def mse(model, batch):
    x, y = batch
    return (model(x) - y).pow(2).mean()


def test_checkpoint_round_trip_restores_weights_optimizer_scheduler_and_rng(tmp_path):
    model, optimizer, scheduler = make_run()
    fit(model, optimizer, mse, regression_data(), 7, scheduler=scheduler, progress=False)
    path = save_checkpoint(tmp_path / "c.safetensors", model, optimizer, scheduler, CheckpointState(7, [1.0, 2.0]))
    expected_next = draws()
    other, other_optimizer, other_scheduler = make_run(lr=5.0)
    state = load_checkpoint(path, other, other_optimizer, other_scheduler)
    assert state == CheckpointState(7, [1.0, 2.0])
    assert draws() == expected_next
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    assert other_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"] != 5.0
    assert other_scheduler.state_dict() == scheduler.state_dict()
    assert other.tied.weight is other.embed.weight  # the tie survives loading


def test_tied_weight_is_one_tensor_under_two_names():
    model = TiedModel()
    state = model.state_dict()
    assert state["tied.weight"].data_ptr() == state["embed.weight"].data_ptr()


def test_checkpoint_that_does_not_fit_names_the_tensor(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", nn.Linear(3, 2))
    with pytest.raises(ValueError, match=r"weight: checkpoint \(2, 3\) vs model \(4, 3\)"):
        load_checkpoint(path, nn.Linear(3, 4))
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.safetensors", nn.Linear(3, 2))


class Interrupted(RuntimeError):
    pass


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    data = regression_data()
    model, optimizer, scheduler = make_run()
    straight = fit(model, optimizer, mse, data, 23, scheduler=scheduler, progress=False)

    def crashing(step: int):
        if step == 17:
            raise Interrupted
        return data(step)

    first = make_run()
    with pytest.raises(Interrupted):
        fit(*first[:2], mse, crashing, 23, scheduler=first[2], checkpoint_dir=tmp_path, checkpoint_every=5, progress=False)
    assert latest_checkpoint(tmp_path).name == "step_00000015.safetensors"
    assert len(list(tmp_path.glob("*.safetensors"))) == 2  # keep_last

    second = make_run()
    resumed = fit(*second[:2], mse, data, 23, scheduler=second[2], checkpoint_dir=tmp_path, checkpoint_every=5, progress=False)
    assert resumed.resumed_from == 15
    assert resumed.losses == straight.losses
    for a, b in zip(model.state_dict().values(), second[0].state_dict().values()):
        assert torch.equal(a, b)
    assert latest_checkpoint(tmp_path).name == "step_00000023.safetensors"


def test_resume_detects_a_changed_run(tmp_path):
    """The resume check can fail: a run with a different learning rate does not end at the same weights."""
    data = regression_data()
    model, optimizer, _ = make_run()
    fit(model, optimizer, mse, data, 10, progress=False)
    other, other_optimizer, _ = make_run(lr=2e-2)
    fit(other, other_optimizer, mse, data, 10, progress=False)
    assert not torch.equal(model.head.weight, other.head.weight)


def test_fit_validates_its_arguments(tmp_path):
    model, optimizer, _ = make_run()
    with pytest.raises(ValueError, match="num_steps"):
        fit(model, optimizer, mse, regression_data(), -1)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        fit(model, optimizer, mse, regression_data(), 3, checkpoint_every=2)


def test_random_batches_cover_each_epoch_once_and_reject_bad_input():
    batch_at = random_batches(torch.arange(10), batch_size=3, seed=0)
    epoch = torch.cat([batch_at(step)[0] for step in range(3)])
    assert len(set(epoch.tolist())) == 9 and torch.equal(batch_at(1)[0], batch_at(1)[0])
    assert not torch.equal(batch_at(0)[0], batch_at(3)[0])
    with pytest.raises(ValueError, match="equal length"):
        random_batches(torch.zeros(3), torch.zeros(4), batch_size=1)
    with pytest.raises(ValueError, match="batch_size"):
        random_batches(torch.zeros(3), batch_size=4)


def test_image_grid_and_loss_curve_return_figures():
    grid = image_grid(torch.rand(10, 1, 8, 8), ncols=4, value_range=(0, 1), title="t")
    assert isinstance(grid, Figure)
    mosaic = grid.axes[0].images[0].get_array()
    assert mosaic.shape == (3 * 10, 4 * 10)  # 3 rows of 4, each 8 pixels + 2 of padding
    assert isinstance(image_grid(np.random.rand(2, 3, 5, 5)), Figure)
    with pytest.raises(ValueError, match=r"expected images of shape"):
        image_grid(torch.rand(2, 2, 5, 5))
    curve = loss_curve({"a": [3, 2, 1, 1], "b": [4, 3, 2, 2]}, smooth=2)
    assert [line.get_label() for line in curve.axes[0].get_lines() if not line.get_label().startswith("_")] == ["a", "b"]


def test_load_or_embedded_decides_without_touching_the_network(monkeypatch):
    calls = []

    def real():
        calls.append("real")
        return "real data"

    monkeypatch.setenv("ANNOTATED_SCALE", "embedded")
    assert load_or_embedded(lambda: "embedded", real).source == "embedded"
    monkeypatch.setenv("ANNOTATED_SCALE", "full")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = load_or_embedded(lambda: "embedded", real)
    assert (loaded.source, loaded.reason) == ("embedded", "HF_HUB_OFFLINE is set")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(utils, "host_reachable", lambda *a, **k: False)
    assert "did not answer" in load_or_embedded(lambda: "embedded", real).reason
    monkeypatch.setattr(utils, "host_reachable", lambda *a, **k: True)
    assert load_or_embedded(lambda: "embedded", real).data == "real data"
    assert calls == ["real"]

    def broken():
        raise OSError("gone")

    with pytest.warns(UserWarning, match="real loader failed"):
        assert load_or_embedded(lambda: "embedded", broken).source == "embedded"
    with pytest.raises(OSError):
        load_or_embedded(lambda: "embedded", broken, use_real=True)


def test_host_reachable_is_bounded():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    # a listening socket completes the TCP handshake from its backlog; no accept() is needed
    assert host_reachable("127.0.0.1", port, timeout=2)
    server.close()
    started = time.perf_counter()
    assert not host_reachable("unresolvable.invalid", 443, timeout=1)
    assert time.perf_counter() - started < 5


def test_each_process_takes_an_equal_slice_and_an_uneven_batch_is_refused():
    from annotated.utils import _slice_for_process

    batch = (torch.arange(6), {"labels": torch.arange(6) * 10})
    first, second = (_slice_for_process(batch, rank, 2) for rank in (0, 1))
    assert first[0].tolist() == [0, 1, 2] and second[1]["labels"].tolist() == [30, 40, 50]
    assert _slice_for_process(batch, 0, 1) is batch
    with pytest.raises(ValueError, match="multiple of 4 rows in every tensor, got 6 rows"):
        _slice_for_process(batch, 0, 4)
    with pytest.raises(ValueError, match="got a scalar"):
        _slice_for_process(torch.tensor(1.0), 0, 2)


def test_fit_hands_the_loss_function_the_model_itself():
    from annotated.utils import fit

    model = torch.nn.ModuleDict({"net": torch.nn.Linear(2, 1)})
    received = []

    def loss_fn(modules, batch):
        received.append(modules)
        return modules["net"](batch).pow(2).mean()

    fit(model, torch.optim.SGD(model.parameters(), lr=0.1), loss_fn, lambda step: torch.ones(4, 2), 2, progress=False)
    assert received == [model, model]


def test_results_table_aligns_numbers_right_and_refuses_ragged_rows():
    from annotated.utils import results_table

    table = results_table([{"model": "a|b", "WER": "0.367", "clips": "1,024"}, {"model": "c", "WER": "12%", "clips": "9"}])
    assert table.markdown.splitlines() == ["| model | WER | clips |", "|---|---:|---:|", "| a\\|b | 0.367 | 1,024 |",
                                           "| c | 12% | 9 |"]
    assert repr(table) == table._repr_markdown_() == table.markdown
    assert results_table([{"x": "1"}], align="l").markdown.splitlines()[1] == "|---|"
    with pytest.raises(ValueError, match="columns"):
        results_table([{"x": "1"}, {"y": "2"}])
    with pytest.raises(ValueError, match="at least one row"):
        results_table([])
    with pytest.raises(ValueError, match="align"):
        results_table([{"x": "1"}], align="c")


@pytest.mark.parametrize("name", utils.ACTIVATION_NAMES)
def test_every_activation_name_computes_what_transformers_computes(name):
    activations = pytest.importorskip("transformers.activations")
    x = torch.linspace(-12, 12, 2_001, dtype=torch.float64)
    torch.testing.assert_close(utils.activation_fn(name)(x), activations.ACT2FN[name](x), rtol=1e-12, atol=1e-12)


def test_activations_with_learned_parameters_and_unknown_names_are_refused():
    for name in ("prelu", "xielu", "no_such_activation"):
        with pytest.raises(ValueError, match="not supported"):
            utils.activation_fn(name, "hidden_act")
