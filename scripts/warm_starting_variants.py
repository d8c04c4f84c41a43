"""The five warm-start variants of Rothe et al. (2020) at equal budget. (The warm-starting chapter's longer experiment.)

One seeded command: build the docstring-summarisation task of the chapter (standard-library docstrings, split by
module, MiniLM's vocabulary pruned to the training text), fine-tune Rnd2Rnd, BERT2Rnd, Rnd2BERT, BERT2BERT and
BERTShare with the same steps, batches, schedule and seed, and report held-out loss, ROUGE-2/ROUGE-L of greedy
summaries and the number of distinct summaries at each quarter of the budget, next to simple reference points (a
constant summary, the body's first words), with a paired bootstrap interval for each variant's ROUGE-2 gain over
Rnd2Rnd.

    python scripts/warm_starting_variants.py        # the full run; results in results/warm_starting/
    python scripts/warm_starting_variants.py --ci   # a tiny run that only shows the script works

Every variant trains through ``annotated.utils.fit`` with safetensors checkpoints under ``--work``: re-running the
same command after an interruption resumes where it stopped (finished variants are read from their last checkpoint).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

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
            warmup_steps=50, num_test=None)
CI = dict(source_length=16, target_length=8, num_layers=1, steps=4, batch_size=4, learning_rate=5e-4,
          warmup_steps=1, num_test=16)


def plot(results: dict):
    """Held-out loss and ROUGE-2 of every variant at each evaluated step."""
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for variant, r in results["variants"].items():
        steps = [point["step"] for point in r["curve"]]
        left.plot(steps, [point["loss"] for point in r["curve"]], marker="o", label=variant)
        right.plot(steps, [point["rouge2"] for point in r["curve"]], marker="o", label=variant)
    for name, value in results["baselines"].items():
        right.axhline(value["rouge2"], color="grey", linestyle=":", linewidth=1)
        right.annotate(name.split(" '")[0], (right.get_xlim()[0], value["rouge2"]), fontsize=7, color="grey")
    left.set(xlabel="fine-tuning step", ylabel="held-out loss (token cross-entropy)")
    right.set(xlabel="fine-tuning step", ylabel="held-out ROUGE-2 F1 (greedy)")
    left.legend(fontsize=8)
    figure.tight_layout()
    return figure


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ci", action="store_true", help="tiny sizes, only to show the script runs")
    parser.add_argument("--work", type=Path, default=Path("checkpoints/warm_starting_variants"))
    parser.add_argument("--out", type=Path, default=Path("results/warm_starting"))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS))
    args = parser.parse_args(argv)
    size = CI if args.ci else FULL
    variants = args.variants.split(",")
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
    results: dict = {"baselines": {
        "constant 'Return the number of items in the list.'": rouge_f1(["return the number of items in the list."] * len(references), references),
        "first 10 words of the body": rouge_f1([" ".join(p.body.split()[1:11]).lower() for p in test_pairs], references),
    }, "variants": {}}
    per_example = {}
    for variant in variants:
        begun = time.perf_counter()
        every = max(1, size["steps"] // 4)
        model, history = fine_tune(variant, task, size["steps"], size["batch_size"], size["learning_rate"],
                                   size["warmup_steps"], num_layers=size["num_layers"], seed=0,
                                   checkpoint_dir=args.work / variant, checkpoint_every=every, keep_last=4)
        seconds = round(time.perf_counter() - begun)
        curve = []
        for step in range(every, size["steps"] + 1, every):  # the same run, evaluated at each quarter
            load_checkpoint(checkpoint_path(args.work / variant, step), model, restore_rng=False)
            scores = evaluate_summaries(model, task)
            curve.append(dict(step=step, loss=scores["loss"], rouge2=scores["rouge2"], rougeL=scores["rougeL"],
                              distinct=scores["distinct"]))
        predictions = scores.pop("predictions")
        per_example[variant] = np.array(rouge_f1(predictions, references, ("rouge2",), per_example=True)["rouge2"])
        scores["examples"] = list(zip(references[:6], predictions[:6]))
        results["variants"][variant] = dict(losses=history.losses, train_seconds=seconds, curve=curve, **scores)
        print(f"{variant:10s}: held-out loss {scores['loss']:.3f}, ROUGE-2 {scores['rouge2']:.2f}, "
              f"ROUGE-L {scores['rougeL']:.2f}, {scores['distinct']} distinct summaries", flush=True)
    if "Rnd2Rnd" in per_example:  # paired bootstrap over held-out examples: 95% interval of the ROUGE-2 gain
        rng = np.random.default_rng(0)
        resamples = rng.integers(0, len(references), size=(2000, len(references)))
        for variant, scores in per_example.items():
            gain = scores - per_example["Rnd2Rnd"]
            low, high = np.percentile(gain[resamples].mean(axis=1), [2.5, 97.5])
            results["variants"][variant]["rouge2_gain_over_rnd2rnd"] = dict(mean=float(gain.mean()), low=float(low), high=float(high))
    results["settings"] = dict(size, num_train=len(train_pairs), num_test=len(test_pairs),
                               vocab_size=task.checkpoint.config.vocab_size)
    results["command"] = "python scripts/warm_starting_variants.py" + (" --ci" if args.ci else "")
    results["seconds"] = round(time.perf_counter() - started)
    results["machine"] = f"{platform.machine()} CPU, {torch.get_num_threads()} thread ({platform.platform()})"
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "_ci" if args.ci else ""
    (args.out / f"variants{suffix}.json").write_text(json.dumps(results, indent=1))
    figure = plot(results)
    figure.savefig(args.out / f"variants{suffix}.png", dpi=100)
    return results


if __name__ == "__main__":
    main()
