"""The Q-learning chapter's full-scale command on the real FrozenLake and Taxi environments (``--smoke``: 200
training episodes and 5 evaluation episodes per environment instead of the course's 10,000/25,000 and 100)."""

from __future__ import annotations

import json

import numpy as np


def test_settings_match_the_course():
    """The hands-on's hyperparameters (Deep RL Course, unit 2), as the chapter cites them."""
    from annotated.rl.tabular import FROZEN_LAKE_SETTINGS as lake
    from annotated.rl.tabular import TAXI_SETTINGS as taxi

    assert lake.env_id == "FrozenLake-v1" and dict(lake.env_kwargs) == {"map_name": "4x4", "is_slippery": False}
    assert (lake.n_training_episodes, lake.decay_rate, taxi.n_training_episodes, taxi.decay_rate) == (
        10_000, 0.0005, 25_000, 0.005)
    for settings in (lake, taxi):
        assert (settings.learning_rate, settings.gamma, settings.max_steps) == (0.7, 0.95, 99)
        assert (settings.max_epsilon, settings.min_epsilon, settings.n_eval_episodes) == (1.0, 0.05, 100)
    assert len(taxi.eval_seed) == 100 and taxi.eval_seed[:3] == (16, 54, 165) and taxi.eval_seed[-1] == 148


def test_smoke_run_writes_results_and_resumes(tmp_path):
    from scripts.full_scale import q_learning

    record = q_learning.main(["--smoke", "--out", str(tmp_path)])
    assert record["smoke"] and record["steps"] == 400
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["metrics"] == record["metrics"]
    assert stored["settings"]["taxi"]["env_id"] == "Taxi-v4"
    assert all(np.isfinite(value) for value in stored["metrics"].values())
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == [
        "frozen_lake_q_table.safetensors", "taxi_q_table.safetensors"]
    again = q_learning.main(["--smoke", "--out", str(tmp_path)])  # loads the saved tables: same evaluation
    assert again["metrics"] == record["metrics"]
