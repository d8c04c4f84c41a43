"""One rank of tests/test_multiprocess.py: trains with ``annotated.utils.fit`` and records what this process did.

    python -m tests.multiprocess_worker --jobs JOBS --records DIR --watch DIR [...]           # one process
    ACCELERATE_USE_CPU=1 python -m torch.distributed.run --standalone --nproc_per_node 2 \
        -m tests.multiprocess_worker --jobs JOBS --records DIR --watch DIR [...]             # two, on the CPU

The jobs (``JOBS``): ``regression`` trains a toy regression with ``fit`` (SGD, a step schedule, clipping,
checkpoints every ``--checkpoint-every`` steps); ``regression-dropout`` the same with dropout; ``interrupted`` stops
that at its first checkpoint and ``resumed`` continues it from there (a later launch); ``reformer`` trains a two-layer
Reformer with the chapter's ``train_language_model``; ``reformer-command`` runs ``scripts.full_scale.reformer --smoke``;
``ddpm`` trains the DDPM chapter's ``train_ddpm`` and ``mlm`` the warm-starting chapter's ``pretrain_mlm`` at toy size.

Each process writes ``DIR/<job>.rank<r>.json`` (the losses ``fit`` logged, the rows its loss function saw at each
step, the step it resumed from, the number of processes Accelerate saw) and ``DIR/<job>.rank<r>.safetensors`` (its
final weights). Every file it creates, renames or deletes under ``--watch`` is recorded too (``writes.rank<r>.json``)
by a Python audit hook, so the test sees which rank wrote each checkpoint without trusting ``fit``'s own account.
Not a test (pytest collects only ``test_*.py``): it runs as a subprocess of one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from annotated.reformer import LanguageModelTraining, ReformerConfig, ReformerLM, byte_windows, train_language_model
from annotated.utils import fit, random_batches, seed_everything


# audit events that change the file system; "open" counts only when it opens for writing
_WRITE_EVENTS = ("open", "os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _written_path(event: str, args: tuple) -> Any:
    """The path a file-system audit event writes to, or ``None`` if the event writes nothing."""
    if event == "open":
        path, mode, flags = args
        opens_for_writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & _WRITE_FLAGS)
        return path if opens_for_writing else None
    return args[1] if event == "os.rename" else args[0]  # a rename writes its destination


def watch_writes(directory: Path) -> list[list[str]]:
    """Start recording ``[event, path relative to directory]`` for every write under ``directory``; returns the list."""
    root, writes = str(directory.resolve()), []

    def hook(event: str, args: tuple) -> None:
        if event not in _WRITE_EVENTS:
            return
        path = _written_path(event, args)
        if isinstance(path, (str, bytes, os.PathLike)):
            full = os.path.abspath(os.fsdecode(path))
            if full.startswith(root + os.sep):
                writes.append([event, os.path.relpath(full, root)])

    sys.addaudithook(hook)  # audit hooks cannot be removed: the worker process ends after its jobs
    return writes


def regression_data(rows: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed toy regression (inputs, targets) and the id of every row, so a rank can report which rows it saw."""
    generator = torch.Generator().manual_seed(1234)
    inputs = torch.randn(rows, 4, generator=generator)
    targets = inputs @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(rows, 1, generator=generator)
    return inputs, targets, torch.arange(rows)


def train_regression(steps: int, checkpoint_dir: Path, checkpoint_every: int, dropout: float) -> dict[str, Any]:
    """``fit`` on the toy regression with SGD, a step schedule and clipping; returns what this rank saw.

    SGD, not Adam, and a clipping norm that only some steps reach: Adam's step, or a step clipped every time, does
    not change when every gradient is scaled, so either would hide gradients summed over the processes instead of
    averaged."""
    seed_everything(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.7)
    seen: list[list[int]] = []

    def loss_fn(network: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        inputs, targets, ids = batch
        seen.append(ids.tolist())  # fit calls this once per step: the rows this process trained on
        return F.mse_loss(network(inputs), targets)

    history = fit(model, optimizer, loss_fn, random_batches(*regression_data(), batch_size=8), steps,
                  scheduler=scheduler, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                  max_grad_norm=8.0, progress=False)  # gradient norms are 6 to 11: some steps are clipped
    return {"model": model, "losses": history.losses, "resumed_from": history.resumed_from, "seen": seen}


def tiny_reformer_config() -> ReformerConfig:
    """A two-layer causal Reformer (one local, one LSH layer, reversible) small enough for a few CPU steps."""
    return ReformerConfig(vocab_size=256, hidden_size=32, num_attention_heads=2, attention_head_size=16,
                          feed_forward_size=64, attn_layers=("local", "lsh"), local_attn_chunk_length=8,
                          lsh_attn_chunk_length=8, num_buckets=4, axial_pos_shape=(4, 8), axial_pos_embds_dim=(8, 24),
                          max_position_embeddings=32)


def train_reformer(steps: int) -> dict[str, Any]:
    """The Reformer chapter's ``train_language_model`` (AdamW, one-cycle schedule to the full run's peak learning rate
    1e-3, clipping) on seeded bytes."""
    text = bytes(torch.randint(97, 123, (2048,), generator=torch.Generator().manual_seed(5)).tolist())
    seed_everything(0)
    model = ReformerLM(tiny_reformer_config())
    history = train_language_model(model, byte_windows(text, 32), LanguageModelTraining(batch_size=4, steps=steps,
                                   learning_rate=1e-3), progress=False)
    return {"model": model, "losses": history.losses, "resumed_from": history.resumed_from}


def train_ddpm_smoke(steps: int) -> dict[str, Any]:
    """The DDPM chapter's ``train_ddpm`` on seeded 8x8 images; its loss calls ``modules["model"]`` inside the module
    ``fit`` trains (a U-Net and its EMA), which a distributed wrapper must not hide."""
    from annotated.ddpm import DDPMConfig, train_ddpm

    images = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(7)) * 2 - 1
    config = DDPMConfig(image_size=8, dim=8, dim_mults=(1, 2), batch_size=8, steps=steps, learning_rate=1e-3,
                        timesteps=20, ema_decay=0.9)
    trained = train_ddpm(config, images, progress=False)
    return {"model": trained.model, "losses": trained.history.losses, "resumed_from": trained.history.resumed_from}


def train_mlm_smoke(steps: int) -> dict[str, Any]:
    """The warm-starting chapter's ``pretrain_mlm`` (its loss calls ``model.encoder`` and ``model.lm_head``) on seeded
    token ids, without dropout: the masks are drawn from the step alone, so two processes compute one's step."""
    from annotated.encoder_decoder import TransformerConfig
    from annotated.warm_starting import BertForMaskedLM, pretrain_mlm

    token_ids = torch.randint(5, 40, (32, 12), generator=torch.Generator().manual_seed(3))
    config = TransformerConfig(vocab_size=40, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                               max_position_embeddings=16, dropout=0.0, attention_dropout=0.0)
    seed_everything(0)
    model = BertForMaskedLM(config)
    history = pretrain_mlm(model, token_ids, steps, mask_id=4, special_ids=range(5), batch_size=8, warmup_steps=2,
                           progress=False)
    return {"model": model, "losses": history.losses, "resumed_from": history.resumed_from}


def save_record(directory: Path, job: str, rank: int, result: dict[str, Any]) -> None:
    """Write one job's weights (safetensors) and the rest of its result (JSON) for this rank."""
    model = result.pop("model")
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
              str(directory / f"{job}.rank{rank}.safetensors"))
    (directory / f"{job}.rank{rank}.json").write_text(json.dumps(result))


def run_reformer_command(out: Path, text: Path) -> None:
    """The Reformer chapter's full-scale command, ``--smoke`` on a local copy of the novel, as this rank runs it."""
    from scripts.full_scale import reformer as command

    command.main(["--smoke", "--out", str(out), "--text", str(text)])


JOBS = ("regression", "regression-dropout", "interrupted", "resumed", "reformer", "reformer-command", "ddpm", "mlm")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", required=True, help=f"comma-separated, run in order: {', '.join(JOBS)}")
    parser.add_argument("--records", type=Path, required=True, help="where each rank writes what it did")
    parser.add_argument("--watch", type=Path, required=True,
                        help="the jobs write under this folder (one subfolder each); every write there is recorded")
    parser.add_argument("--steps", type=int, default=8, help="steps of every job that uses fit directly")
    parser.add_argument("--checkpoint-every", type=int, default=4)
    parser.add_argument("--text", type=Path, help="reformer-command: the novel in Project Gutenberg's layout")
    arguments = parser.parse_args(argv)
    jobs = arguments.jobs.split(",")
    if set(jobs) - set(JOBS):
        parser.error(f"unknown jobs {sorted(set(jobs) - set(JOBS))}; known: {', '.join(JOBS)}")
    # torchrun's rank, not Accelerate's: a launch Accelerate does not recognise must still write one record per rank
    rank = int(os.environ.get("RANK", "0"))
    writes = watch_writes(arguments.watch)
    arguments.records.mkdir(parents=True, exist_ok=True)
    results = {}
    for job in jobs:
        if job in ("regression", "regression-dropout"):
            results[job] = train_regression(arguments.steps, arguments.watch / job, arguments.checkpoint_every,
                                            dropout=0.1 if job == "regression-dropout" else 0.0)
        elif job in ("interrupted", "resumed"):  # regression-dropout stopped at its first checkpoint, then resumed
            steps = arguments.checkpoint_every if job == "interrupted" else arguments.steps
            results[job] = train_regression(steps, arguments.watch / "interrupted", arguments.checkpoint_every, 0.1)
        elif job == "reformer":
            results[job] = train_reformer(arguments.steps)
        elif job == "ddpm":
            results[job] = train_ddpm_smoke(arguments.steps)
        elif job == "mlm":
            results[job] = train_mlm_smoke(arguments.steps)
        else:
            run_reformer_command(arguments.watch / job, arguments.text)
    from accelerate import PartialState

    state = PartialState()  # the state fit's Accelerator set up: how many processes Accelerate trained with
    state.wait_for_everyone()  # every rank's writes are done before any rank reports them
    for job, result in results.items():
        save_record(arguments.records, job, rank, result | {"world_size": state.num_processes})
    (arguments.records / f"writes.rank{rank}.json").write_text(json.dumps(writes))


if __name__ == "__main__":
    main()
