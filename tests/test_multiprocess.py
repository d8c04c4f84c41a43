"""Scale-out, proved: ``fit`` and a chapter's training under two CPU processes, against one process.

Each run is a subprocess of ``tests/multiprocess_worker.py``: one process with plain ``python -m``, two with
``torchrun --standalone --nproc_per_node 2`` (``python -m torch.distributed.run``, gloo on the CPU). On a machine
without a GPU, Accelerate joins torchrun's process group only with ``ACCELERATE_USE_CPU=1``; without it every process
trains alone on whole batches and calls itself the main process (``accelerate launch --cpu`` sets the variable but
starts one process). Every rank reports the losses ``fit`` logged, the rows its loss function saw, the number of
processes Accelerate saw, its final weights and every file it wrote (an audit hook).

``fit`` promises that each process trains on its slice of every batch (``tensor_split``, rank 0 the first) and that
the gradients are averaged, so with a batch that splits evenly and a loss that is a mean over the batch, two processes
compute the one-process step. They agree to float32 rounding, not bit for bit: the sum of two half-batch gradients is
rounded differently from one whole-batch gradient.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.distributed
from safetensors.torch import load_file

from tests.test_full_scale_reformer import novel_standin


if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
    pytest.skip("torch.distributed with the gloo backend is not available: two CPU processes cannot train together",
                allow_module_level=True)

REPO_ROOT = Path(__file__).resolve().parents[1]
STEPS, EVERY = 8, 4  # the regression checkpoints at steps 4 and 8; the resumed run stops at 4 and restarts
LAUNCH_SECONDS = 120  # a launch takes 5 to 20 s; ranks out of step wait on each other for ever


@dataclass(frozen=True)
class Run:
    """The records one launch of the worker left behind."""

    records: Path
    watch: Path

    def record(self, job: str, rank: int) -> dict:
        """What ``rank`` reported for ``job``: losses, rows seen, step resumed from, Accelerate's process count."""
        return json.loads((self.records / f"{job}.rank{rank}.json").read_text())

    def weights(self, job: str, rank: int) -> dict[str, torch.Tensor]:
        """The weights ``rank`` ended ``job`` with."""
        return load_file(str(self.records / f"{job}.rank{rank}.safetensors"))

    def writes(self, rank: int) -> list[tuple[str, str]]:
        """Every (audit event, path under the watched folder) with which ``rank`` changed the file system."""
        return [tuple(write) for write in json.loads((self.records / f"writes.rank{rank}.json").read_text())]


def stop(process: subprocess.Popen) -> None:
    """End a launch and its workers: torchrun passes SIGTERM on to them (they run in sessions of their own, so
    killing torchrun alone would leave them waiting on each other)."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def launch(processes: int, folder: Path, jobs: str, *options: str, watch: Path | None = None) -> Run:
    """Run the worker's ``jobs`` in ``processes`` processes on the CPU; fail with the launch's last error lines."""
    run = Run(folder / "records", watch or folder / "watch")
    worker = ["-m", "tests.multiprocess_worker", "--jobs", jobs, "--records", str(run.records),
              "--watch", str(run.watch), *options]
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] if processes > 1 else []
    command = [sys.executable, *launcher, *worker]
    # ACCELERATE_USE_CPU: without it Accelerate ignores torchrun's process group on a machine without a GPU (and the
    # one-process run must use the CPU too, to compare like with like on a machine that has one)
    env = os.environ | {"ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1",
                        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    log = folder / "stderr.txt"  # a file, not a pipe: a worker that outlives its launcher cannot block the test
    with log.open("w") as stderr, subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                                                    stderr=stderr) as process:
        try:
            process.wait(timeout=LAUNCH_SECONDS)
        except subprocess.TimeoutExpired:
            stop(process)
            pytest.fail(f"{processes}-process worker ({jobs}) did not finish in {LAUNCH_SECONDS} s: a rank waits in a "
                        f"collective that another rank never reaches?", pytrace=False)
    if process.returncode != 0:
        tail = " | ".join(line for line in log.read_text().splitlines()[-8:] if line.strip())
        pytest.fail(f"{processes}-process worker ({jobs}) exited with {process.returncode}: {tail}", pytrace=False)
    return run


@pytest.fixture(scope="module")
def text(tmp_path_factory) -> Path:
    """A stand-in for the novel in Project Gutenberg's layout (the Reformer command's ``--text``)."""
    return novel_standin(tmp_path_factory.mktemp("novel"))


@pytest.fixture(scope="module")
def one(tmp_path_factory) -> Run:
    """One process: the regression and the Reformer, the references."""
    return launch(1, tmp_path_factory.mktemp("one"), "regression,reformer,mlm")


@pytest.fixture(scope="module")
def two(tmp_path_factory, text) -> Run:
    """Two processes; ``interrupted`` runs the regression with dropout to its first checkpoint (step 4) and stops."""
    jobs = "regression,reformer,regression-dropout,interrupted,reformer-command,ddpm,mlm"
    return launch(2, tmp_path_factory.mktemp("two"), jobs, "--text", str(text))


@pytest.fixture(scope="module")
def resumed(two, tmp_path_factory) -> Run:
    """Two fresh processes continue the interrupted run from its checkpoint to step 8."""
    return launch(2, tmp_path_factory.mktemp("resumed"), "resumed", watch=two.watch)


def assert_same_weights(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], atol: float,
                        what: str) -> None:
    """Fail with the parameter that differs most, and by how much, if any differs by more than ``atol``."""
    assert actual.keys() == expected.keys(), f"{what}: different parameters"
    worst = max(expected, key=lambda name: float((actual[name] - expected[name]).abs().max()))
    difference = float((actual[worst] - expected[worst]).abs().max())
    assert difference <= atol, f"{what}: {worst} differs by {difference:.3g} (tolerance {atol:g})"


def assert_ranks_agree(two: Run, job: str, what: str) -> None:
    """Both ranks of the two-process run end ``job`` with bit-identical weights."""
    assert_same_weights(two.weights(job, 1), two.weights(job, 0), 0.0, f"{what}, rank 1 vs rank 0")


def assert_two_processes_end_where_one_does(one: Run, two: Run, job: str, weight_atol: float, what: str) -> None:
    """``job`` logs the one-process losses (to float32 rounding: losses near 10 are 1e-6 apart, and the two-process
    step is rounded differently), ends with its weights to ``weight_atol``, and both ranks agree exactly."""
    torch.testing.assert_close(two.record(job, 0)["losses"], one.record(job, 0)["losses"], rtol=1e-6, atol=1e-6,
                               msg=lambda m: f"{what}: logged losses, two processes vs one: {m}")
    assert_same_weights(two.weights(job, 0), one.weights(job, 0), weight_atol,
                        f"{what}: final weights, two processes vs one")
    assert_ranks_agree(two, job, what)


def test_accelerate_sees_two_processes(one, two):
    sizes = [one.record("regression", 0)["world_size"]] + [two.record("regression", r)["world_size"] for r in (0, 1)]
    assert sizes == [1, 2, 2], f"Accelerate's num_processes: one-process run {sizes[0]}, two-process run {sizes[1:]}"


def test_each_process_trains_on_its_half_of_every_batch(one, two):
    whole, first, second = (run.record("regression", rank)["seen"] for run, rank in ((one, 0), (two, 0), (two, 1)))
    assert len(first) == len(second) == len(whole) == STEPS, "fit must call the loss once per step on every rank"
    for step, (rows, rows_0, rows_1) in enumerate(zip(whole, first, second)):
        assert (rows_0, rows_1) == (rows[: len(rows) // 2], rows[len(rows) // 2 :]), (
            f"step {step}: rank 0 trained on rows {rows_0} and rank 1 on {rows_1}; one process on {rows}, so each "
            f"rank should take its half")


def test_fit_on_two_processes_ends_where_one_process_does(one, two):
    assert_two_processes_end_where_one_does(one, two, "regression", weight_atol=1e-6, what="fit")


def test_the_reformer_chapters_training_on_two_processes_ends_where_one_process_does(one, two):
    """``annotated.reformer.train_language_model`` (reversible layers, LSH attention, AdamW with a one-cycle schedule
    and clipping) on a two-layer model: its LSH rotations are drawn per head, not per sequence, so both ranks draw
    the ones one process draws and the runs are comparable."""
    # weights: 4e-7 measured; Adam's division by the root of the second moment magnifies the rounding of tiny gradients
    assert_two_processes_end_where_one_does(one, two, "reformer", weight_atol=1e-5, what="the Reformer")


def test_the_warm_starting_pretraining_averages_its_gradients_over_two_processes(one, two):
    """``annotated.warm_starting.pretrain_mlm``, whose loss calls the model's encoder and head, not the model: under
    a distributed wrapper that call must still be part of the forward pass whose gradients are averaged. Its loss is a
    mean over the masked tokens, not over rows, and the two halves of a batch mask different numbers of tokens, so
    the mean of the two ranks' losses weights tokens slightly differently from one process (4e-4 at the first step,
    measured): the runs are close, not equal."""
    torch.testing.assert_close(two.record("mlm", 0)["losses"], one.record("mlm", 0)["losses"], rtol=1e-2, atol=0,
                               msg=lambda m: f"MLM losses, two processes vs one: {m}")
    assert_ranks_agree(two, "mlm", "MLM")


def test_the_ddpm_chapters_training_averages_its_gradients_over_two_processes(two):
    """``annotated.ddpm.train_ddpm`` (its loss indexes a module dictionary). Its noise and time steps are drawn in the
    loss, the same draws on every rank, so it is not compared with one process; the ranks train on different halves
    of every batch, so they end with equal weights only if their gradients were averaged."""
    losses = two.record("ddpm", 0)["losses"]
    assert len(losses) == STEPS and all(math.isfinite(loss) for loss in losses), f"DDPM losses {losses}"
    assert_ranks_agree(two, "ddpm", "DDPM U-Net")


def published(writes: list[tuple[str, str]]) -> list[str]:
    """The files a rank published: the destinations of its renames and the files it opened for writing."""
    return [path for event, path in writes if event in ("os.rename", "open")]


def under(writes: list[tuple[str, str]], folders: tuple[str, ...]) -> list[tuple[str, str]]:
    """The writes into the jobs' folders ``folders``."""
    return [(event, path) for event, path in writes if path.split(os.sep)[0] in folders]


FIT_JOBS = ("regression", "regression-dropout", "interrupted")


def test_only_the_main_process_writes_checkpoints(two):
    assert under(two.writes(1), FIT_JOBS) == [], f"rank 1 wrote {under(two.writes(1), FIT_JOBS)}; only rank 0 may"
    expected = sorted([f"{job}/step_{step:08d}.safetensors" for job in FIT_JOBS[:2] for step in (EVERY, STEPS)]
                      + [f"interrupted/step_{EVERY:08d}.safetensors"])
    fit_checkpoints = sorted(published(under(two.writes(0), FIT_JOBS)))
    assert fit_checkpoints == expected, f"rank 0 published {fit_checkpoints}, expected each of {expected} once"
    on_disk = sorted(str(p.relative_to(two.watch)) for p in two.watch.glob("regression*/*"))
    assert on_disk == [path for path in expected if path.startswith("regression")], f"checkpoint folders hold {on_disk}"


def test_only_the_main_process_writes_a_commands_checkpoints_and_results(two):
    """``python -m scripts.full_scale.reformer --smoke`` under two processes: checkpoints and ``results.json`` once."""
    folders = ("reformer-command",)
    assert under(two.writes(1), folders) == [], f"rank 1 wrote {under(two.writes(1), folders)}; only rank 0 may"
    command = sorted(published(under(two.writes(0), folders)))
    expected = ["reformer-command/checkpoints/step_00000001.safetensors",
                "reformer-command/checkpoints/step_00000002.safetensors", "reformer-command/results.json"]
    assert command == expected, f"rank 0 published {command}, expected each of {expected} once"
    results = json.loads((two.watch / "reformer-command" / "results.json").read_text())
    assert results["settings"]["processes"] == 2, results["settings"]
    assert all(math.isfinite(value) for value in results["metrics"].values()), results["metrics"]


def test_a_resumed_two_process_run_ends_where_an_uninterrupted_one_does(two, resumed):
    """Same process count, same arithmetic: bit for bit. Dropout makes the restored random state matter; every rank
    restores it, with the weights and the optimiser, from the checkpoint rank 0 wrote."""
    for rank in (0, 1):
        interrupted, continued = two.record("interrupted", rank), resumed.record("resumed", rank)
        assert (len(interrupted["losses"]), continued["resumed_from"]) == (EVERY, EVERY), (
            f"rank {rank}: the first run logged {len(interrupted['losses'])} steps and the second resumed from "
            f"{continued['resumed_from']}, expected both {EVERY}")
        assert continued["losses"] == two.record("regression-dropout", rank)["losses"], (
            f"rank {rank}: the resumed run logged other losses than the uninterrupted one")
        assert_same_weights(resumed.weights("resumed", rank), two.weights("regression-dropout", rank), 0.0,
                            f"rank {rank}, resumed vs uninterrupted")
    assert Counter(published(resumed.writes(0))) == {f"interrupted/step_{STEPS:08d}.safetensors": 1}, (
        f"the resumed run's rank 0 published {published(resumed.writes(0))}")
    assert resumed.writes(1) == [], f"rank 1 of the resumed run wrote {resumed.writes(1)}"
