"""The Reformer chapter at full scale: the post's Crime-and-Punishment model on the novel, byte by byte.

    python -m scripts.full_scale.reformer [--out DIR] [--text FILE] [--smoke]
    accelerate launch -m scripts.full_scale.reformer       # several processes: one window per process per step

Loads the novel with ``annotated.reformer.load_crime_and_punishment`` (from ``--text``, a saved copy of Project
Gutenberg's file, or downloaded), splits it 95/5 like the chapter, trains ``ReformerLM(crime_and_punishment_config())``
on windows of 524,288 bytes with ``train_language_model`` and ``full_training()`` (its batch per process; tqdm progress, safetensors
checkpoints every 250 steps in ``--out``; a second call resumes), then reports held-out bits per character on
windows of ``FULL_EVAL_LENGTH`` bytes next to the unigram baseline. ``--smoke`` trains the same model for two steps
on 1,024-byte windows (a 524,288-byte step does not fit CI's CPU budget) and evaluates one window.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from annotated.reformer import (
    CRIME_AND_PUNISHMENT_URL,
    FULL_EVAL_LENGTH,
    ReformerLM,
    bits_per_byte,
    byte_windows,
    crime_and_punishment_config,
    full_training,
    load_crime_and_punishment,
    train_language_model,
    unigram_bits,
)
from annotated.utils import seed_everything
from scripts.full_scale import common


CHAPTER = "reformer"


def main(argv: list[str] | None = None) -> dict | None:
    parser = common.parser(CHAPTER, __doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, default=None, help="a local copy of Project Gutenberg's pg2554.txt")
    arguments = parser.parse_args(argv)
    from accelerate import Accelerator

    stopwatch = common.Stopwatch()
    accelerator = Accelerator()
    config, training = crime_and_punishment_config(), full_training()
    with common.reaching(CRIME_AND_PUNISHMENT_URL, "pass --text with a saved copy of that file", hub=False):
        text = load_crime_and_punishment(arguments.text)
    split = int(len(text) * 0.95)
    train_text, test_text = text[:split], text[split:]
    length, eval_length, checkpoint_every = math.prod(config.axial_pos_shape), FULL_EVAL_LENGTH, 250
    if arguments.smoke:
        length, eval_length, checkpoint_every = 1024, 1024, 1
        training = dataclasses.replace(training, steps=2)
    # the recipe's batch is per process: fit splits a step's batch evenly over the processes
    training = dataclasses.replace(training, batch_size=training.batch_size * accelerator.num_processes)
    train_windows = byte_windows(train_text, length)
    test_windows = byte_windows(test_text, eval_length)[:1 if arguments.smoke else None]
    seed_everything(0)
    model = ReformerLM(config)
    history = train_language_model(model, train_windows, training, "Reformer LM (Crime and Punishment)",
                                   checkpoint_dir=arguments.out / "checkpoints", checkpoint_every=checkpoint_every,
                                   accelerator=accelerator)
    if not accelerator.is_main_process:
        return None
    model = model.to(accelerator.device)
    scored_text = test_text[: len(test_windows) * eval_length + 1]
    metrics = {
        "held_out_bits_per_character": bits_per_byte(model, test_windows.to(accelerator.device), batch_size=1),
        "unigram_bits_per_character": unigram_bits(train_text, scored_text),
        "train_loss_bits_last_100_steps": float(torch.tensor(history.losses[-100:]).mean()) / math.log(2),
    }
    return common.write_results(
        CHAPTER, arguments.out, metrics=metrics, steps=len(history.losses), wall_seconds=stopwatch.seconds(),
        smoke=arguments.smoke,
        settings={"model": dataclasses.asdict(config), "training": dataclasses.asdict(training),
                  "window_length": length, "eval_window_length": eval_length, "text_bytes": len(text),
                  "train_windows": len(train_windows), "held_out_windows": len(test_windows),
                  "processes": accelerator.num_processes,
                  "parameters": sum(p.numel() for p in model.parameters()),
                  "source": "annotated.reformer.crime_and_punishment_config() (The Reformer post), full_training()"})


if __name__ == "__main__":
    common.run(CHAPTER, main)
