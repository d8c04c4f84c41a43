"""scripts/reformer_attention_budget.py: the three settings, the script end to end at reduced size (and its resume),
and the finding on the committed run (results/reformer/attention_budget.json)."""

import json
from pathlib import Path

import pytest
import torch

from annotated.reformer import ReformerLM
from scripts import reformer_attention_budget as script


COMMITTED = Path(__file__).resolve().parent.parent / "results" / "reformer" / "attention_budget.json"


def test_settings_share_every_parameter_and_differ_only_in_what_the_lsh_layers_see():
    models = {}
    for setting in script.SETTINGS:
        torch.manual_seed(0)
        models[setting] = ReformerLM(script.config_for(setting, 256))
    states = {setting: model.state_dict() for setting, model in models.items()}
    for setting in ("full", "local"):
        assert states[setting].keys() == states["lsh"].keys()
        assert all(torch.equal(states[setting][k], states["lsh"][k]) for k in states["lsh"])
    # full: one chunk as long as the sequence; local: one bucket; lsh: the chapter's 16 buckets in chunks of 64
    lsh_layer = lambda model: model.layers.blocks[1].attention.attention  # noqa: E731
    assert lsh_layer(models["full"]).chunk_length == 256 and lsh_layer(models["lsh"]).chunk_length == 64
    assert lsh_layer(models["local"]).num_buckets == 1 and lsh_layer(models["lsh"]).num_buckets == 16
    with pytest.raises(ValueError, match="multiple of 64"):
        script.config_for("lsh", 100)
    with pytest.raises(ValueError, match="setting must be one of"):
        script.config_for("dense", 128)


def test_script_runs_at_reduced_size_and_resumes(tmp_path):
    args = ["--steps", "2", "--length", "128", "--seeds", "0", "1", "--eval-windows", "2", "--curve-every", "1",
            "--out", str(tmp_path), "--no-progress"]
    results = script.main(args)
    stored = json.loads((tmp_path / "attention_budget.json").read_text())
    assert (tmp_path / "attention_budget.png").is_file()
    assert len(list((tmp_path / "runs").glob("*.json"))) == 6 and len(results["trained_now"]) == 6
    assert stored["command"].endswith("--steps 2 --length 128 --seeds 0 1")
    for run in stored["runs"]:
        assert run["curve_steps"] == [1, 2] and len(run["curve_training_bpc"]) == 2
        assert 0 < run["held_out_bpc"] < 9 and run["held_out_windows"] == 2
    summary = stored["summary"]["settings"]
    assert list(summary) == list(script.SETTINGS)
    assert len({s["parameters"] for s in summary.values()}) == 1  # the same parameter count in every setting
    for setting in script.SETTINGS:
        assert summary[setting]["seeds"] == [0, 1] and summary[setting]["std"] >= 0
        assert stored["memory"][setting]["peak_mib"] > 0
    assert len(stored["summary"]["finding"]["lsh_minus_full_per_seed"]) == 2
    # resuming: every run file exists, so a second call trains nothing and reports the same numbers
    again = script.main(args)
    assert again["trained_now"] == []
    assert [r["held_out_bpc"] for r in again["runs"]] == [r["held_out_bpc"] for r in results["runs"]]


def test_committed_run_and_its_finding():
    """The finding section 10 of the chapter states, on the committed run (seeds 0, 1, 2)."""
    budget = json.loads(COMMITTED.read_text())
    settings, finding = budget["summary"]["settings"], budget["summary"]["finding"]
    assert budget["length"] >= 1024 and budget["seeds"] == [0, 1, 2] and list(settings) == list(script.SETTINGS)
    assert len(budget["runs"]) == 9 and len({s["parameters"] for s in settings.values()}) == 1
    # same order on every seed: local-only lowest, then LSH, then full attention
    assert finding["order_per_seed"] == ["local < lsh < full"] * 3
    # LSH is never behind full attention on the same seed, and the mean gap is inside every setting's seed spread
    assert max(finding["lsh_minus_full_per_seed"]) < 0
    assert abs(finding["lsh_minus_full_mean"]) < min(s["std"] for s in settings.values())
    # the measured memory of one training step: full attention needs more than three times LSH's
    assert settings["full"]["peak_mib"] > 3 * max(settings["lsh"]["peak_mib"], settings["local"]["peak_mib"])
