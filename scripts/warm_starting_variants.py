"""The five warm-start variants of Rothe et al. (2020) at equal budget, over training seeds. (The warm-starting
chapter's longer experiment.)

One seeded command: build the docstring-summarisation task of the chapter (standard-library docstrings, split by
module, MiniLM's vocabulary pruned to the training text), fine-tune Rnd2Rnd, BERT2Rnd, Rnd2BERT, BERT2BERT and
BERTShare with the same steps, batches, schedule and seed, once per training seed, and report held-out loss,
ROUGE-2/ROUGE-L of greedy summaries and the number of distinct summaries at each quarter of the budget, next to
simple reference points (a constant summary, the body's first words).

A training seed sets the random initialisation of the parts a variant does not load, the batch order and dropout;
the data split, the vocabulary and the held-out examples are the same for every seed, so every comparison is paired
(same seed, same held-out examples). Each comparison (every variant against Rnd2Rnd, and the pairs in COMPARISONS)
gets a 95% interval from a two-level paired bootstrap that resamples the seeds and, shared by the drawn seeds, the
held-out examples, so that it covers both the training noise and the choice of examples; next to it, the gain of
each seed alone with its interval over examples only, and the mean and standard deviation of the per-seed gains.

    python scripts/warm_starting_variants.py        # the full run (seeds 0, 1, 2); results in results/warm_starting/
    python scripts/warm_starting_variants.py --ci   # a tiny run (seeds 0, 1) that only shows the script works

Resumable at two levels: every (seed, variant) run writes its results, per-example scores included, to
``<out>/runs/seed<S>_<variant>.json`` as soon as it finishes, and a re-run skips the runs found there; a run
interrupted mid-training resumes from its last checkpoint under ``--work`` (``annotated.utils.fit``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from annotated.utils import checkpoint_path, load_checkpoint
from annotated.warm_starting import (
    VARIANTS,
    docstring_pairs,
    evaluate_summaries,
    fine_tune,
    load_bert_checkpoint,
    make_summarisation_task,
    minilm_directory,
    rouge_f1,
    split_by_module,
)


FULL = dict(source_length=32, target_length=16, num_layers=2, steps=800, batch_size=16, learning_rate=5e-4,
            warmup_steps=50, num_test=None, seeds=(0, 1, 2))
CI = dict(source_length=16, target_length=8, num_layers=1, steps=4, batch_size=4, learning_rate=5e-4,
          warmup_steps=1, num_test=16, seeds=(0, 1))
# (variant, against): every variant against Rnd2Rnd, and the pairs the chapter's claims rest on: does sharing cost
# anything (BERTShare vs BERT2BERT), does a pretrained decoder add to a pretrained encoder (BERT2BERT vs BERT2Rnd),
# and is the pretrained encoder worth more than the pretrained decoder (BERT2Rnd vs Rnd2BERT).
COMPARISONS = [(v, "Rnd2Rnd") for v in VARIANTS if v != "Rnd2Rnd"] + [
    ("BERTShare", "BERT2BERT"), ("BERT2BERT", "BERT2Rnd"), ("BERT2Rnd", "Rnd2BERT")]
RESAMPLES = 4000


@torch.no_grad()
def per_example_loss(model, task) -> tuple[np.ndarray, np.ndarray]:
    """Each held-out example's summed token cross-entropy and its number of target tokens (their ratio of sums is
    the held-out loss that ``evaluate_summaries`` reports)."""
    model.eval()
    logits = model(task.test_source, (task.test_source != 0).long(), labels=task.test_labels).logits
    losses = torch.nn.functional.cross_entropy(rearrange(logits, "b t v -> b v t"), task.test_labels,
                                               ignore_index=-100, reduction="none")
    return losses.sum(dim=1).double().numpy(), (task.test_labels != -100).sum(dim=1).double().numpy()


def paired_bootstrap(a: np.ndarray, b: np.ndarray, weights: np.ndarray | None = None, resamples: int = RESAMPLES,
                     seed: int = 0) -> dict:
    """Gain of ``a`` over ``b``, per-example scores of shape (seeds, examples) paired by seed and example.

    The mean is over seeds of each seed's (``weights``-weighted) mean over examples. ``low``/``high``: 95% interval of
    a two-level bootstrap (seeds drawn with replacement; examples drawn with replacement, the same draw for every
    seed). ``per_seed``: each seed's gain with a 95% interval over examples only; ``seed_sd``: the standard deviation
    of the per-seed gains (ddof=1)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"expected two (seeds, examples) arrays of the same shape, got {a.shape} and {b.shape}")
    num_seeds, num_examples = a.shape
    weights = np.ones(num_examples) if weights is None else np.asarray(weights, dtype=float)
    if weights.shape != (num_examples,):
        raise ValueError(f"expected {num_examples} weights, got shape {weights.shape}")
    rng = np.random.default_rng(seed)
    examples = rng.integers(0, num_examples, size=(resamples, num_examples))
    seeds = rng.integers(0, num_seeds, size=(resamples, num_seeds))
    weighted = (a - b) * weights
    per_seed_gain = weighted.sum(axis=1) / weights.sum()
    per_seed_draws = weighted[:, examples].sum(axis=2) / weights[examples].sum(axis=1)  # (seeds, resamples)
    two_level = per_seed_draws[seeds.T, np.arange(resamples)].mean(axis=0)
    low, high = np.percentile(two_level, [2.5, 97.5])
    per_seed = [dict(gain=float(g), low=float(lo), high=float(hi)) for g, (lo, hi)
                in zip(per_seed_gain, np.percentile(per_seed_draws, [2.5, 97.5], axis=1).T)]
    return dict(mean=float(per_seed_gain.mean()), low=float(low), high=float(high), per_seed=per_seed,
                seed_sd=float(per_seed_gain.std(ddof=1)) if num_seeds > 1 else 0.0)


def run_one(variant: str, seed: int, task, size: dict, work: Path) -> dict:
    """Fine-tune one variant with one seed (resuming from ``work``), evaluate it at each quarter of the budget."""
    begun = time.perf_counter()
    every = max(1, size["steps"] // 4)
    directory = work / f"seed{seed}" / variant
    model, history = fine_tune(variant, task, size["steps"], size["batch_size"], size["learning_rate"],
                               size["warmup_steps"], num_layers=size["num_layers"], seed=seed,
                               checkpoint_dir=directory, checkpoint_every=every, keep_last=4)
    train_seconds = time.perf_counter() - begun
    curve = []
    for step in range(every, size["steps"] + 1, every):  # the same run, evaluated at each quarter
        load_checkpoint(checkpoint_path(directory, step), model, restore_rng=False)
        scores = evaluate_summaries(model, task)
        curve.append(dict(step=step, loss=scores["loss"], rouge2=scores["rouge2"], rougeL=scores["rougeL"],
                          distinct=scores["distinct"]))
    predictions = scores.pop("predictions")
    loss_sums, token_counts = per_example_loss(model, task)
    return dict(variant=variant, seed=seed, **scores, curve=curve, losses=history.losses,
                train_seconds=round(train_seconds), seconds=round(time.perf_counter() - begun),
                machine=machine(), examples=list(zip(task.test_references[:6], predictions[:6])),
                per_example=dict(rouge2=rouge_f1(predictions, task.test_references, ("rouge2",), per_example=True)["rouge2"],
                                 loss_sum=loss_sums.tolist(), tokens=token_counts.tolist()))


def machine() -> str:
    return f"{platform.machine()} CPU, {torch.get_num_threads()} thread ({platform.platform()})"


def summarise(runs: dict, variants: list[str], seeds: list[int]) -> tuple[dict, list[dict]]:
    """Per variant: means over seeds (and each seed's standard deviation alongside); the paired comparisons."""
    summary = {}
    for variant in variants:
        rs = [runs[seed, variant] for seed in seeds]
        entry = {}
        for key in ("loss", "rouge2", "rougeL", "distinct"):
            values = np.array([r[key] for r in rs], dtype=float)
            entry[key] = float(values.mean()) if key != "distinct" else int(round(values.mean()))
            entry[key + "_sd"] = float(values.std(ddof=1)) if len(rs) > 1 else 0.0
            entry[key + "_per_seed"] = values.tolist()
        entry["curve"] = [dict(step=points[0]["step"], **{key: float(np.mean([p[key] for p in points]))
                                                            for key in ("loss", "rouge2", "rougeL", "distinct")})
                          for points in zip(*(r["curve"] for r in rs))]
        summary[variant] = entry
    comparisons = []
    for variant, against in COMPARISONS:
        if variant not in variants or against not in variants:
            continue
        a = [runs[seed, variant]["per_example"] for seed in seeds]
        b = [runs[seed, against]["per_example"] for seed in seeds]
        rouge2 = paired_bootstrap([x["rouge2"] for x in a], [x["rouge2"] for x in b])
        tokens = np.array(a[0]["tokens"])
        loss = paired_bootstrap([np.array(x["loss_sum"]) / tokens for x in a],
                                [np.array(x["loss_sum"]) / tokens for x in b], weights=tokens)
        comparisons.append(dict(variant=variant, against=against, rouge2_gain=rouge2, loss_change=loss))
    if "Rnd2Rnd" in variants:  # the key the chapter's table reads
        for variant in variants:
            match = [c["rouge2_gain"] for c in comparisons if c["variant"] == variant and c["against"] == "Rnd2Rnd"]
            summary[variant]["rouge2_gain_over_rnd2rnd"] = (
                {k: match[0][k] for k in ("mean", "low", "high", "seed_sd")} if match
                else dict(mean=0.0, low=0.0, high=0.0, seed_sd=0.0))
    return summary, comparisons


def _plot_comparisons(axis, comparisons: list[dict], key: str, label: str, steps: int, legend: bool) -> None:
    """One row per comparison: the mean change with its two-level bootstrap interval, and each seed's change."""
    for row, c in enumerate(comparisons):
        g = c[key]
        axis.errorbar(g["mean"], row, xerr=[[g["mean"] - g["low"]], [g["high"] - g["mean"]]], fmt="o", color="black",
                      capsize=3)
        axis.scatter([s["gain"] for s in g["per_seed"]], [row] * len(g["per_seed"]), marker="x", color="tab:red",
                     zorder=3, label="one seed" if row == 0 else None)
    axis.axvline(0, color="grey", linewidth=1)
    axis.set_yticks(range(len(comparisons)), [f"{c['variant']} vs {c['against']}" for c in comparisons], fontsize=8)
    axis.invert_yaxis()
    axis.set(xlabel=f"{label} (95% CI over seeds and examples)", title=f"at step {steps}")
    if comparisons and legend:
        axis.legend(fontsize=8)


def plot(results: dict):
    """Held-out loss and ROUGE-2 at each evaluated step (mean over seeds, each seed faint), and every comparison's
    change in held-out loss and gain in ROUGE-2 with their two-level bootstrap intervals."""
    import matplotlib.pyplot as plt

    figure, ((left, middle), (loss_axis, rouge_axis)) = plt.subplots(2, 2, figsize=(13, 8))
    colours = dict(zip(results["variants"], plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for variant, r in results["variants"].items():
        steps = [point["step"] for point in r["curve"]]
        for axis, key in ((left, "loss"), (middle, "rouge2")):
            axis.plot(steps, [point[key] for point in r["curve"]], marker="o", color=colours[variant], label=variant)
            for run in results["runs"].values():
                if run["variant"] == variant:
                    axis.plot(steps, [point[key] for point in run["curve"]], color=colours[variant], alpha=0.25, lw=1)
    for name, value in results["baselines"].items():
        middle.axhline(value["rouge2"], color="grey", linestyle=":", linewidth=1)
        middle.annotate(name.split(" '")[0], (middle.get_xlim()[0], value["rouge2"]), fontsize=7, color="grey")
    seeds = ", ".join(map(str, results["seeds"]))
    left.set(xlabel="fine-tuning step", ylabel="held-out loss (token cross-entropy)", title=f"mean of seeds {seeds}")
    middle.set(xlabel="fine-tuning step", ylabel="held-out ROUGE-2 F1 (greedy)", title="faint: each seed")
    left.legend(fontsize=8)
    steps = results["settings"]["steps"]
    _plot_comparisons(loss_axis, results["comparisons"], "loss_change", "held-out loss change", steps, legend=False)
    _plot_comparisons(rouge_axis, results["comparisons"], "rouge2_gain", "ROUGE-2 gain", steps, legend=True)
    figure.tight_layout()
    return figure


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ci", action="store_true", help="tiny sizes and two seeds, only to show the script runs")
    parser.add_argument("--work", type=Path, default=None,
                        help="checkpoints (default checkpoints/warm_starting_variants, or ..._ci with --ci)")
    parser.add_argument("--out", type=Path, default=Path("results/warm_starting"))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (default 0 1 2; 0 1 with --ci)")
    args = parser.parse_args(argv)
    size = dict(CI if args.ci else FULL)
    default_seeds = size.pop("seeds")
    seeds = sorted(set(args.seeds if args.seeds is not None else default_seeds))
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not seeds:
        raise ValueError(f"expected variants from {VARIANTS} and at least one seed, got {variants} and {seeds}")
    suffix = "_ci" if args.ci else ""
    work = args.work or Path(f"checkpoints/warm_starting_variants{suffix}")
    runs_dir = args.out / f"runs{suffix}"
    torch.set_num_threads(1)
    started = time.perf_counter()
    directory = minilm_directory()
    minilm = load_bert_checkpoint(directory)
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    train_pairs, test_pairs = split_by_module(docstring_pairs())
    if size["num_test"]:
        test_pairs = test_pairs[: size["num_test"]]
    task = make_summarisation_task(minilm, tokenizer, train_pairs, test_pairs, size["source_length"], size["target_length"])
    references = task.test_references
    settings = dict(size, num_train=len(train_pairs), num_test=len(test_pairs), vocab_size=task.checkpoint.config.vocab_size)
    results: dict = {"baselines": {
        "constant 'Return the number of items in the list.'": rouge_f1(["return the number of items in the list."] * len(references), references),
        "first 10 words of the body": rouge_f1([" ".join(p.body.split()[1:11]).lower() for p in test_pairs], references),
    }}
    setup_seconds = round(time.perf_counter() - started)
    runs = {}
    todo = [(seed, variant) for seed in seeds for variant in variants]
    bar = tqdm(todo, desc="runs (seed, variant)", unit="run")
    for seed, variant in bar:
        bar.set_postfix(seed=seed, variant=variant)
        path = runs_dir / f"seed{seed}_{variant}.json"
        if path.is_file():  # finished earlier: read, after checking it was made with these settings
            stored = json.loads(path.read_text())
            if stored["settings"] != json.loads(json.dumps(settings)):
                raise ValueError(f"{path} was made with other settings ({stored['settings']}, now {settings}): "
                                 "delete it (and its checkpoints) to re-run")
            runs[seed, variant] = stored["run"]
            continue
        run = run_one(variant, seed, task, size, work)
        runs_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dict(settings=settings, run=run), indent=1))
        runs[seed, variant] = run
        tqdm.write(f"seed {seed} {variant:10s}: held-out loss {run['loss']:.3f}, ROUGE-2 {run['rouge2']:.2f}, "
                   f"ROUGE-L {run['rougeL']:.2f}, {run['distinct']} distinct summaries, {run['seconds']} s")
    results["variants"], results["comparisons"] = summarise(runs, variants, seeds)
    results["runs"] = {f"seed{seed}_{variant}": {k: v for k, v in runs[seed, variant].items() if k != "per_example"}
                       for seed, variant in todo}
    results["seeds"] = seeds
    results["settings"] = settings
    results["command"] = "python scripts/warm_starting_variants.py" + (" --ci" if args.ci else "")
    # the runs' times as measured when each ran (a resumed command re-reads finished runs), plus the task's setup
    results["seconds"] = sum(r["seconds"] for r in runs.values()) + setup_seconds
    results["seconds_this_invocation"] = round(time.perf_counter() - started)
    results["machine"] = "; ".join(sorted({r["machine"] for r in runs.values()}))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"variants{suffix}.json").write_text(json.dumps(results, indent=1))
    figure = plot(results)
    figure.savefig(args.out / f"variants{suffix}.png", dpi=100)
    return results


if __name__ == "__main__":
    main()
