"""Does self-supervised pretraining help CTC fine-tuning on little labelled audio? (The chapter's longer experiment.)

One seeded command: synthesise the corpus, pretrain a small wav2vec 2.0 on all training clips without transcripts
(saving its encoder at several points of the run), then fine-tune each saved encoder with CTC on a small labelled
subset, and fine-tune the same architecture from random initialisation on the same subset for the same number of
steps; every fine-tuning runs for each learning rate and seed of the grid. Held-out WER is reported with greedy
decoding and with the trigram LM.

    python scripts/wav2vec2_pretraining.py                 # the full run; results in results/wav2vec2/
    python scripts/wav2vec2_pretraining.py --ci            # a tiny run that only shows the script works

Runs on a GPU when one is visible (through Accelerate), else on the CPU. Pretraining trains through
``annotated.utils.fit`` with safetensors checkpoints under ``--work``, and the results file is rewritten after every
fine-tuning run: re-running the same command after an interruption resumes where it stopped.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import matplotlib


matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from annotated.utils import fit, seed_everything  # noqa: E402
from annotated.wav2vec2 import (  # noqa: E402
    CharTokenizer,
    NGramLM,
    Wav2Vec2ForCTC,
    Wav2Vec2ForPreTraining,
    ctc_loss_fn,
    ctc_prefix_beam_search,
    embedded_config,
    make_corpus_plan,
    pretraining_loss_fn,
    speech_batches,
    synthesize_speech,
    transcribe,
    word_error_rate,
)


FULL = dict(num_train=2000, num_test=100, labelled=100, pre_steps=4000, eval_at=[1000, 2000, 4000], ctc_steps=300,
            batch=32, pre_lr=1e-3, ctc_lrs=[5e-4, 2e-3], seeds=[1, 2])
CI = dict(num_train=24, num_test=8, labelled=8, pre_steps=4, eval_at=[2, 4], ctc_steps=3, batch=4, pre_lr=1e-3,
          ctc_lrs=[2e-3], seeds=[1])
MASKING = dict(mask_time_prob=0.5, mask_time_min_masks=2)


def warmup_then_linear(optimizer: torch.optim.Optimizer, warmup: int, total: int | None):
    """Linear warm-up over ``warmup`` steps, then constant (``total`` None) or linear decay to zero at ``total``."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 1.0 if total is None else max(0.0, (total - step) / max(1, total - warmup))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def machine_description() -> str:
    if torch.cuda.is_available():
        return f"1 x {torch.cuda.get_device_name(0)} GPU ({platform.machine()}, {platform.platform()})"
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads ({platform.platform()})"


@torch.no_grad()
def held_out_pretraining_metrics(pretrainer: Wav2Vec2ForPreTraining, test_set) -> dict:
    """Contrastive loss per masked frame (chance: log(1 + K)) and codebook perplexity on a seeded held-out batch."""
    pretrainer.train()
    seed_everything(1)
    device = next(pretrainer.parameters()).device
    probe = speech_batches(test_set, min(32, len(test_set)), seed=0)(0)
    out = pretrainer(probe["input_values"].to(device), probe["attention_mask"].to(device))
    return {"contrastive": round((out.contrastive_loss / out.mask_time_indices.sum()).item(), 4),
            "perplexity": round(float(out.codevector_perplexity), 2)}


def pretrain(size: dict, train_set, test_set, vocab_size: int, work: Path, results: dict, save) -> None:
    """Pretrain, saving the encoder (``wav2vec2`` sub-module) at every step of ``size['eval_at']``."""
    decay = 0.25 ** (1 / (0.7 * size["pre_steps"]))  # temperature 2 -> 0.5 over the first 70% of the run
    loss_fn = functools.partial(pretraining_loss_fn, temperature_decay=decay)
    seed_everything(0)
    pretrainer = Wav2Vec2ForPreTraining(embedded_config(vocab_size, **MASKING))
    optimizer = torch.optim.AdamW(pretrainer.parameters(), lr=size["pre_lr"], weight_decay=0.01)
    scheduler = warmup_then_linear(optimizer, max(1, size["pre_steps"] // 20), size["pre_steps"])
    batches = speech_batches(train_set, size["batch"], seed=1)
    for step in size["eval_at"]:
        snapshot = work / f"encoder_step{step}.safetensors"
        if snapshot.is_file() and str(step) in results["pretraining"]:
            continue
        started = time.perf_counter()
        history = fit(pretrainer, optimizer, loss_fn, batches, step, scheduler=scheduler, max_grad_norm=5.0,
                      description=f"pretraining to step {step}", checkpoint_dir=work / "pretraining",
                      checkpoint_every=min(250, step))
        save_file({k: v.detach().cpu().contiguous() for k, v in pretrainer.wav2vec2.state_dict().items()}, snapshot)
        results["pretraining"][str(step)] = dict(held_out_pretraining_metrics(pretrainer, test_set),
                                                  seconds=round(time.perf_counter() - started, 1))
        results["pretraining_losses"] = history.losses
        save()


def fine_tune(start: str, lr: float, seed: int, size: dict, labelled, test_set, tokenizer, lm, work: Path) -> dict:
    """CTC fine-tuning from ``start`` ('scratch' or a pretraining step), then held-out WER greedy and with the LM."""
    started = time.perf_counter()
    seed_everything(seed)
    model = Wav2Vec2ForCTC(embedded_config(len(tokenizer)))
    if start != "scratch":
        model.wav2vec2.load_state_dict(load_file(work / f"encoder_step{start}.safetensors"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    history = fit(model, optimizer, ctc_loss_fn, speech_batches(labelled, min(size["batch"], len(labelled)), tokenizer, seed=seed),
                  size["ctc_steps"], scheduler=warmup_then_linear(optimizer, 20, None), max_grad_norm=5.0,
                  description=f"CTC from {start}, lr {lr}, seed {seed}")
    greedy, log_probs = transcribe(model, test_set, tokenizer)
    decode = functools.partial(ctc_prefix_beam_search, tokenizer=tokenizer, lm=lm, beam_width=16, alpha=0.5, beta=1.0)
    # the beam search is plain Python: one process per core (forked, so the workers need no imports)
    with ProcessPoolExecutor(max_workers=min(os.cpu_count() or 1, len(log_probs)), mp_context=get_context("fork")) as pool:
        with_lm = list(pool.map(decode, log_probs, chunksize=4))
    return {"start": start, "lr": lr, "seed": seed, "ctc_losses": history.losses,
            "greedy_wer": round(word_error_rate(test_set.texts, greedy), 4),
            "lm_wer": round(word_error_rate(test_set.texts, with_lm), 4),
            "examples": [list(pair) for pair in zip(test_set.texts[:3], greedy[:3])], "seconds": round(time.perf_counter() - started, 1)}


def summary_rows(results: dict) -> list[dict]:
    """Mean and spread over seeds of the WERs of every (start, learning rate) pair."""
    rows = []
    for start in ["scratch"] + [str(s) for s in results["settings"]["eval_at"]]:
        for lr in results["settings"]["ctc_lrs"]:
            runs = [r for r in results["runs"].values() if r["start"] == start and r["lr"] == lr]
            if runs:
                greedy, lm = [r["greedy_wer"] for r in runs], [r["lm_wer"] for r in runs]
                rows.append({"start": start, "lr": lr, "seeds": len(runs), "greedy_wer": round(float(np.mean(greedy)), 4),
                             "greedy_wer_range": [min(greedy), max(greedy)], "lm_wer": round(float(np.mean(lm)), 4),
                             "lm_wer_range": [min(lm), max(lm)]})
    return rows


def plot(results: dict, path: Path) -> None:
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    rows = summary_rows(results)
    for lr in results["settings"]["ctc_lrs"]:
        mine = [r for r in rows if r["lr"] == lr]
        steps = [0 if r["start"] == "scratch" else int(r["start"]) for r in mine]
        left.plot(steps, [r["greedy_wer"] for r in mine], "o-", label=f"greedy, CTC lr {lr:g}")
        left.plot(steps, [r["lm_wer"] for r in mine], "s--", label=f"with trigram LM, CTC lr {lr:g}")
    left.set(xlabel="pretraining steps before CTC fine-tuning (0: random init)", ylabel="held-out WER",
             title="Held-out WER after the same CTC budget")
    left.legend(fontsize=8)
    final = str(results["settings"]["eval_at"][-1])
    lr = results["settings"]["ctc_lrs"][0]
    for start, label in (("scratch", "random init"), (final, f"pretrained {final} steps")):
        for run in results["runs"].values():
            if run["start"] == start and run["lr"] == lr:
                losses = np.convolve(run["ctc_losses"], np.ones(10) / 10, mode="valid") if len(run["ctc_losses"]) >= 10 else run["ctc_losses"]
                right.plot(losses, label=f"{label}, seed {run['seed']}")
    right.set(xlabel="CTC step", ylabel="CTC loss (train, smoothed)", title=f"CTC fine-tuning, lr {lr:g}")
    right.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ci", action="store_true", help="tiny sizes, only to show the script runs")
    parser.add_argument("--work", type=Path, default=Path("checkpoints/wav2vec2_pretraining"))
    parser.add_argument("--out", type=Path, default=Path("results/wav2vec2"))
    args = parser.parse_args(argv)
    size = CI if args.ci else FULL
    torch.set_num_threads(2)
    suffix = "_ci" if args.ci else ""
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    results_path = args.out / f"pretrain_vs_scratch{suffix}.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    if results.get("settings", {}).get("grid") != size:
        results = {"settings": {"grid": size}, "pretraining": {}, "runs": {}, "seconds": 0}
    started = time.perf_counter()
    already = results["seconds"]

    def save() -> None:
        results["seconds"] = round(already + time.perf_counter() - started)
        results_path.write_text(json.dumps(results, indent=1))

    train_plan, test_plan = make_corpus_plan(size["num_train"], size["num_test"], seed=0)
    corpus = synthesize_speech(train_plan + test_plan, seed=0)
    train_set = corpus.subset(range(len(train_plan)))
    test_set = corpus.subset(range(len(train_plan), len(corpus)))
    labelled = train_set.subset(range(size["labelled"]))
    tokenizer = CharTokenizer.from_texts(train_set.texts)
    lm = NGramLM(labelled.texts, order=3)
    results["settings"].update(size, masking=MASKING, chance_contrastive=round(math.log(1 + embedded_config(len(tokenizer)).num_negatives), 4),
                               labelled_minutes=round(labelled.seconds() / 60, 2),
                               unlabelled_minutes=round(train_set.seconds() / 60, 2))
    results["command"] = "python scripts/wav2vec2_pretraining.py" + (" --ci" if args.ci else "")
    results["machine"] = machine_description()

    pretrain(size, train_set, test_set, len(tokenizer), args.work, results, save)
    for seed in size["seeds"]:
        for start in ["scratch", str(size["eval_at"][-1])] + [str(s) for s in size["eval_at"][:-1]]:
            for lr in size["ctc_lrs"]:
                key = f"{start}/lr{lr:g}/seed{seed}"
                if key not in results["runs"]:
                    results["runs"][key] = fine_tune(start, lr, seed, size, labelled, test_set, tokenizer, lm, args.work)
                    save()
    results["summary"] = summary_rows(results)
    save()
    plot(results, args.out / f"pretrain_vs_scratch{suffix}.png")
    for row in results["summary"]:
        print(f"CTC from {row['start']:>7s}, lr {row['lr']:g}: held-out WER greedy {row['greedy_wer']:.3f}, "
              f"with LM {row['lm_wer']:.3f} ({row['seeds']} seeds)")
    return results


if __name__ == "__main__":
    main()
