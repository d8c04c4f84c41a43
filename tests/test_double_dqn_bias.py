"""scripts/double_dqn_bias.py: the configuration, the script end to end at reduced size (and its resume), the
aggregation of the committed run files, and the finding the PPO chapter states on the committed run
(results/double_dqn/bias.json)."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from annotated.rl.deep import DQNConfig
from scripts import double_dqn_bias as script
from tests.json_compare import same_json


COMMITTED = Path(__file__).resolve().parent.parent / "results" / "double_dqn"


def test_config_is_the_chapters_and_reduced_sizes_keep_its_proportions():
    chapter = replace(DQNConfig(hidden_sizes=(128, 128), gradient_steps=64, eval_every=2_500, target_return=475.0,
                                seed=3), target_return=None)
    assert script.config_for("dqn", 3) == chapter
    assert script.config_for("double_dqn", 3) == replace(chapter, double_q=True)
    small = script.config_for("double_dqn", 0, 600)
    assert (small.total_timesteps, small.eval_every, small.learning_starts, small.double_q) == (600, 30, 12, True)
    with pytest.raises(ValueError, match="multiple of 20"):
        script.config_for("dqn", 0, 610)
    with pytest.raises(ValueError, match="at least 512"):
        script.config_for("dqn", 0, 500)
    with pytest.raises(ValueError, match="variant must be one of"):
        script.config_for("ddqn", 0)
    with pytest.raises(ValueError, match="seeds must be >= 0"):
        script.config_for("dqn", -1)
    with pytest.raises(ValueError, match="each seed once"):
        script.main(["--seeds", "0", "0", "--steps", "600", "--out", "/nonexistent"])


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    values = [1.0, -2.0, 4.0, 0.5, 3.0]
    low, high = script.bootstrap_interval(values)
    assert script.bootstrap_interval(values) == [low, high]
    assert min(values) <= low < np.mean(values) < high <= max(values)
    assert script.bootstrap_interval([2.0, 2.0, 2.0]) == [2.0, 2.0]


def test_script_runs_at_reduced_size_resumes_and_aggregates(tmp_path):
    args = ["--steps", "600", "--seeds", "0", "1", "--out", str(tmp_path), "--no-progress"]
    results = script.main(args)
    stored = json.loads((tmp_path / "bias.json").read_text())
    assert (tmp_path / "bias.png").stat().st_size > 10_000
    assert sorted(p.name for p in (tmp_path / "runs").glob("*.json")) == [
        "double_dqn_seed0.json", "double_dqn_seed1.json", "dqn_seed0.json", "dqn_seed1.json"]
    assert len(results["trained_now"]) == 4 and stored["command"].endswith(f"--steps 600 --seeds 0 1 --out {tmp_path}")
    assert stored["eval_steps"] == list(range(30, 601, 30)) and stored["half"] == 300
    runs = [json.loads(p.read_text()) for p in sorted((tmp_path / "runs").glob("*.json"))]
    for run in runs:
        assert len(run["estimate"]) == len(run["obtained"]) == 20 and np.all(np.isfinite(run["estimate"]))
        # CartPole pays 1 a step: the discounted return is at least 1 and at most 1/(1-gamma)
        assert all(1 <= value <= stored["value_bound"] for value in run["obtained"])
        assert all(o <= full for o, full in zip(run["obtained_within_time_limit"], run["obtained"]))
    # the aggregation: per run by hand, per variant mean and sd, paired differences
    dqn0 = next(r for r in runs if r["variant"] == "dqn" and r["seed"] == 0)
    bias = np.array(dqn0["estimate"]) - np.array(dqn0["obtained"])
    row = stored["runs"]["dqn"]["0"]
    assert row["first_half_bias"] == pytest.approx(bias[:10].mean())
    assert row["second_half_bias"] == pytest.approx(bias[10:].mean())
    assert row["max_estimate"] == max(dqn0["estimate"]) and row["final_estimate"] == dqn0["estimate"][-1]
    values = [stored["runs"]["dqn"][s]["second_half_bias"] for s in ("0", "1")]
    summary = stored["variants"]["dqn"]["second_half_bias"]
    assert summary["mean"] == pytest.approx(np.mean(values)) and summary["sd"] == pytest.approx(np.std(values, ddof=1))
    paired = stored["paired"]["second_half_bias"]
    differences = [stored["runs"]["dqn"][s]["second_half_bias"] - stored["runs"]["double_dqn"][s]["second_half_bias"]
                   for s in ("0", "1")]
    assert paired["per_seed"] == pytest.approx(differences) and paired["seeds"] == [0, 1]
    assert paired["dqn_higher_seeds"] + paired["double_dqn_higher_seeds"] == 2
    assert paired["ci95"][0] <= paired["mean"] <= paired["ci95"][1]
    assert stored["max_estimate"]["value"] == max(max(r["estimate"]) for r in runs)
    assert stored["max_estimate"]["runs"] == stored["over_runs"]["runs"] == 4
    # resuming: every run file exists, so a second call trains nothing and writes the same aggregate
    again = script.main(args)
    assert again["trained_now"] == []
    assert json.loads((tmp_path / "bias.json").read_text()) == stored
    # a run file of another length in the same folder is refused, not mixed in
    with pytest.raises(ValueError, match="use another --out"):
        script.main(["--steps", "1200", "--seeds", "0", "--out", str(tmp_path), "--no-progress"])


def committed() -> dict:
    return json.loads((COMMITTED / "bias.json").read_text())


def test_committed_bias_json_is_the_aggregate_of_the_committed_run_files():
    stored = committed()
    runs = script.load_runs(COMMITTED / "runs", list(script.VARIANTS), script.SEEDS, script.STEPS)
    again = json.loads(json.dumps(script.aggregate(runs, script.command_for(script.STEPS, script.SEEDS,
                                                                            script.DEFAULT_OUT))))
    stored.pop("machine"), again.pop("machine")
    assert same_json(again, stored)
    assert (COMMITTED / "bias.png").is_file()


def test_committed_run_shows_what_the_chapter_states():
    """The findings the PPO chapter's Double DQN section states and asserts, on the committed run (seeds 0-9)."""
    stored = committed()
    assert stored["steps"] == script.STEPS and stored["eval_steps"] == list(range(2_500, 50_001, 2_500))
    assert all(stored["variants"][v]["seeds"] == script.SEEDS for v in script.VARIANTS)
    every_run = [row for rows in stored["runs"].values() for row in rows.values()]
    assert len(every_run) == 20
    # the estimate lags behind what the greedy policy obtains in the first half, on every run, by a wide margin
    assert max(row["first_half_bias"] for row in every_run) < -10
    # Double DQN's second-half estimate is the lower one on every seed, the interval of the difference above zero
    estimate = stored["paired"]["second_half_estimate"]
    assert estimate["dqn_higher_seeds"] == 10 and estimate["ci95"][0] > 0
    # ... but neither the bias nor the return obtained separates the two targets
    for key in ("second_half_bias", "second_half_obtained"):
        assert stored["paired"][key]["ci95"][0] < 0 < stored["paired"][key]["ci95"][1], key
    assert stored["paired"]["second_half_bias"]["dqn_higher_seeds"] == 5
    # the estimates rise at every evaluation; the largest comes at the end, once above 1/(1-gamma)
    assert stored["over_runs"]["estimate_rises_every_evaluation_runs"] == 20
    assert all(row["max_estimate_step"] == script.STEPS for row in every_run)
    assert stored["max_estimate"]["runs_above_bound"] == 1 and stored["max_estimate"]["value"] > stored["value_bound"]
    # the return obtained moves by tens between consecutive evaluations; greedy evaluations collapse after 475
    assert stored["over_runs"]["largest_obtained_move_second_half_min"] > 10
    for summary in stored["variants"].values():
        assert summary["greedy_solved_runs"] == 10 and summary["greedy_collapsed_after_solved_runs"] >= 5
