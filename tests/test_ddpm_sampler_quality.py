"""scripts/ddpm_sampler_quality.py: the Fréchet distance, and the script end to end at its CI size."""

import json

import numpy as np
import pytest

from scripts import ddpm_sampler_quality as script


def test_frechet_distance_is_zero_for_identical_sets_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 10))
    assert script.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    # a pure mean shift of 3 in one coordinate adds exactly 9 to the distance between otherwise identical sets
    shifted = a + np.eye(10)[0] * 3.0
    assert script.frechet_distance(a, shifted) == pytest.approx(9.0, abs=1e-8)
    # 1-d Gaussians: (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2, here with the sample moments
    x, y = rng.normal(size=(500, 1)), 2.0 * rng.normal(size=(500, 1)) + 1.0
    expected = (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2
    assert script.frechet_distance(x, y) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="same D"):
        script.frechet_distance(a, a[:, :3])


def test_script_runs_at_ci_size_and_resumes(tmp_path):
    args = ["--ci", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--no-progress"]
    results = script.main(args)
    stored = json.loads((tmp_path / "out" / "sampler_quality_ci.json").read_text())
    assert (tmp_path / "out" / "sampler_quality_ci.png").is_file()
    sizes, timesteps = script.CI, stored["config"]["timesteps"]
    names = [f"DDIM {k}" for k in sizes["ddim_steps"]] + [f"DDPM {timesteps}", "untrained net, DDIM 5"]
    expected_runs = len(sizes["training_seeds"]) * len(names) * len(sizes["sampling_seeds"]) + len(sizes["sampling_seeds"])
    assert len(stored["runs"]) == expected_runs
    for run in stored["runs"].values():
        assert run["n_samples"] == sizes["n_samples"] and run["frechet"] >= 0 and run["seconds"] >= 0
    summary = stored["summary"]["samplers"]
    assert summary[f"DDPM {timesteps}"]["network_calls"] == timesteps and summary["DDIM 2"]["network_calls"] == 2
    assert set(stored["training"]) == {str(seed) for seed in sizes["training_seeds"]}
    assert len(stored["floor"]["values"]) == sizes["floor_splits"]
    # pure noise is far from real digits: larger than every real-vs-real distance of the same size
    assert summary["pure noise"]["min"] > stored["summary"]["floor"]["max"]
    assert stored["judge"]["held_out_accuracy"] > 0.9
    assert set(stored["summary"]["finding"]) >= {"ddim_steps_within_floor_of_ddpm", "ddim_steps_behind_ddpm_on_every_training_seed"}
    assert summary["DDIM 2"]["gap_to_ddpm_runs"] == len(sizes["training_seeds"]) * len(sizes["sampling_seeds"])
    # resuming: a second call finds every entry done, samples nothing and returns the same distances
    again = script.main(args)
    assert {k: r["frechet"] for k, r in again["runs"].items()} == {k: r["frechet"] for k, r in results["runs"].items()}
