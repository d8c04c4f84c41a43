"""Chapter 07's Atari DQN full-scale command on the real ALE SpaceInvaders, at smoke size (CPU, seconds).

``--smoke`` keeps the configuration of ``atari_dqn_config()`` (the RL Baselines3 Zoo's) but runs 300 steps with a
buffer of 200, updates from step 100, a checkpoint every 100 steps and a 2-game evaluation cut at 200 frames.
"""

from __future__ import annotations

import json

import numpy as np
import pytest


pytest.importorskip("ale_py")


def test_full_config_matches_the_zoo():
    from annotated.rl.deep import ATARI_ID, atari_dqn_config

    config = atari_dqn_config()
    assert ATARI_ID == "ALE/SpaceInvaders-v5"
    assert (config.total_timesteps, config.buffer_size, config.learning_starts) == (10_000_000, 100_000, 100_000)
    assert (config.learning_rate, config.batch_size, config.gamma) == (1e-4, 32, 0.99)
    assert (config.train_frequency, config.gradient_steps, config.target_update_interval) == (4, 1, 1_000)
    assert (config.exploration_fraction, config.start_epsilon, config.final_epsilon) == (0.1, 1.0, 0.01)


def test_smoke_run_writes_results_and_resumes(tmp_path):
    from scripts.full_scale import dqn_atari

    record = dqn_atari.main(["--smoke", "--out", str(tmp_path)])
    assert record["smoke"] and record["steps"] == 300
    assert record["settings"]["env_id"] == "ALE/SpaceInvaders-v5" and record["settings"]["learning_rate"] == 1e-4
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["metrics"] == record["metrics"] and all(np.isfinite(v) for v in stored["metrics"].values())
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step_00000200.json", "step_00000200.safetensors", "step_00000300.json", "step_00000300.safetensors"]
    history = json.loads((tmp_path / "checkpoints" / "step_00000300.json").read_text())["history"]
    assert len(history["losses"]) == (300 - 100) // 4
    again = dqn_atari.main(["--smoke", "--out", str(tmp_path)])  # resumes at the end: no further training
    assert again["steps"] == 300 and again["metrics"] == record["metrics"]


def test_train_dqn_checkpoint_needs_a_folder():
    from annotated.rl.deep import DQNConfig, train_dqn

    with pytest.raises(ValueError, match="checkpoint_dir"):
        train_dqn("CartPole-v1", DQNConfig(), checkpoint_every=5)
