"""The Reformer chapter's full-scale command on CPU, with a small local file standing in for the novel.

Only the download is replaced: ``--text`` points at a file in Project Gutenberg's layout (licence header with the
title, ``*** START OF`` / ``*** END OF`` lines). The model is ``crime_and_punishment_config()`` unchanged (six
layers, width 256, axial grid (512, 1024)); ``--smoke`` shortens the windows to 1,024 bytes, because one step on a
524,288-byte window does not fit a CPU test, and trains two steps.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest


HEADER = b"The Project Gutenberg eBook of Crime and Punishment\n\nTitle: Crime and Punishment\n\n"
START, END = b"*** START OF THE PROJECT GUTENBERG EBOOK CRIME AND PUNISHMENT ***\n", b"*** END OF THE PROJECT GUTENBERG EBOOK ***\n"


def novel_standin(tmp_path, size: int = 40_000, header: bytes = HEADER, start: bytes = START):
    rng = np.random.default_rng(0)
    words = [b"Raskolnikov", b"Sonia", b"the", b"street", b"was", b"hot", b"and", b"he", b"went", b"out", b"."]
    body = b" ".join(words[i] for i in rng.integers(0, len(words), size // 5))[:size]
    path = tmp_path / "pg2554.txt"
    path.write_bytes(header + start + body + b"\n" + END + b"licence text\n")
    return path


def test_full_config_matches_the_post():
    """The post's Crime-and-Punishment configuration; with the post's 320 sentencepieces and without the language
    model head it has exactly the parameter count the post prints for ReformerModel with axial positions."""
    from annotated.reformer import ReformerLM, crime_and_punishment_config

    config = crime_and_punishment_config()
    assert (config.axial_pos_shape, config.axial_pos_embds_dim) == ((512, 1024), (64, 192))
    assert config.max_position_embeddings == 524_288 == math.prod(config.axial_pos_shape) and config.hidden_size == 256
    model = ReformerLM(dataclasses.replace(config, vocab_size=320))
    head = sum(p.numel() for name, p in model.named_parameters() if name.startswith("lm_head"))
    assert sum(p.numel() for p in model.parameters()) - head == 2_584_064  # "Num parameters of model: 2584064"


def test_loader_cuts_the_licence(tmp_path):
    from annotated.reformer import load_crime_and_punishment

    text = load_crime_and_punishment(novel_standin(tmp_path, size=1000))
    assert text.split()[0] in {b"Raskolnikov", b"Sonia", b"the", b"street", b"was", b"hot", b"and", b"he", b"went", b"out", b"."}
    assert b"*** START" not in text and b"*** END" not in text and b"licence" not in text


def test_wrong_text_is_refused(tmp_path):
    from annotated.reformer import load_crime_and_punishment

    with pytest.raises(ValueError, match="Crime and Punishment"):
        load_crime_and_punishment(novel_standin(tmp_path, size=1000, header=b"The Project Gutenberg eBook of Emma\n",
                                                start=b"*** START OF THE PROJECT GUTENBERG EBOOK EMMA ***\n"))


def test_smoke_run_writes_results_and_resumes(tmp_path):
    from scripts.full_scale import reformer

    out = tmp_path / "out"
    arguments = ["--smoke", "--out", str(out), "--text", str(novel_standin(tmp_path))]
    record = reformer.main(arguments)
    assert record["smoke"] and record["steps"] == 2 and record["settings"]["window_length"] == 1024
    stored = json.loads((out / "results.json").read_text())
    assert stored["settings"]["model"]["axial_pos_shape"] == [512, 1024]  # the full model, only shorter windows
    assert stored["metrics"] == record["metrics"]
    assert all(np.isfinite(value) for value in stored["metrics"].values())
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "step_00000001.safetensors", "step_00000002.safetensors"]
    again = reformer.main(arguments)  # resumes at step 2: no further training
    assert again["metrics"]["train_loss_bits_last_100_steps"] == record["metrics"]["train_loss_bits_last_100_steps"]
