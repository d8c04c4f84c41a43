"""The PPO chapter's full-scale command on the real LunarLander-v3 (Box2D), on CPU.

The configuration is ``lunar_lander_config()`` with one change made by ``--smoke`` for CI's CPU budget: each
rollout is 64 steps of the 16 environments instead of 1,024 (and 16 minibatches of 64, the course's minibatch
size), one update, one evaluation of two episodes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest


def test_full_config_matches_the_course():
    """The values the chapter cites (the Deep RL Course's LunarLander PPO; SB3 defaults for the rest)."""
    from annotated.rl.deep import LUNAR_LANDER_ID, LUNAR_LANDER_PASS_MARK, lunar_lander_config

    config = lunar_lander_config()
    assert LUNAR_LANDER_ID == "LunarLander-v3" and LUNAR_LANDER_PASS_MARK == 200
    assert (config.num_envs, config.num_steps, config.update_epochs) == (16, 1024, 4)
    assert config.num_envs * config.num_steps // config.num_minibatches == 64  # batch_size=64
    assert (config.gamma, config.gae_lambda, config.ent_coef) == (0.999, 0.98, 0.01)
    assert config.total_timesteps == 1_000_000 and config.target_return is None
    assert (config.learning_rate, config.clip_coef, config.anneal_lr, config.anneal_clip) == (3e-4, 0.2, False, False)


def test_checkpoint_every_needs_a_folder():
    from annotated.rl.deep import lunar_lander_config, train_ppo

    with pytest.raises(ValueError, match="checkpoint_dir"):
        train_ppo("LunarLander-v3", lunar_lander_config(), checkpoint_every=5)


def test_smoke_run_writes_results_and_resumes(tmp_path):
    from scripts.full_scale import ppo

    record = ppo.main(["--smoke", "--out", str(tmp_path)])
    assert record["smoke"] and record["steps"] == 16 * 64
    assert record["settings"]["env_id"] == "LunarLander-v3" and record["settings"]["gamma"] == 0.999
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["metrics"] == record["metrics"]
    assert all(np.isfinite(value) for value in stored["metrics"].values())
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step_00000001.json", "step_00000001.safetensors"]
    again = ppo.main(["--smoke", "--out", str(tmp_path)])  # resumes after the only update: no further training
    assert again["steps"] == record["steps"] and again["metrics"] == record["metrics"]


def test_train_ppo_resumes_mid_run(tmp_path):
    """An interrupted run (its last checkpoint removed) continues from the one before and ends where a full run does."""
    from annotated.rl.deep import PPOConfig, train_ppo

    config = PPOConfig(total_timesteps=3 * 8 * 32, eval_every=8 * 32, eval_episodes=2)
    _, full = train_ppo("CartPole-v1", config, checkpoint_dir=tmp_path, checkpoint_every=1)
    assert full.env_steps == 768 and full.eval_steps == [256, 512, 768]
    (tmp_path / "step_00000003.safetensors").unlink()
    (tmp_path / "step_00000003.json").unlink()
    _, resumed = train_ppo("CartPole-v1", config, checkpoint_dir=tmp_path, checkpoint_every=1)
    assert resumed.env_steps == 768 and resumed.eval_steps == [256, 512, 768]
    assert resumed.eval_returns[:2] == full.eval_returns[:2]  # restored from the checkpoint of update 2
    assert len(resumed.losses) == len(full.losses)
    assert (tmp_path / "step_00000003.safetensors").is_file()
