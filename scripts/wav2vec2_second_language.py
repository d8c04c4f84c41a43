"""Does English pretraining help another language? CTC fine-tuning on synthetic Turkish from the chapter's
English-pretrained encoder and from random initialisation. (The chapter's second-language experiment.)

One seeded command: synthesise the chapter's English training clips and pretrain the chapter's small wav2vec 2.0 on
them without transcripts (section 13's settings, for longer), once, cached under ``--work``. Then synthesise a small
Turkish corpus with eSpeak NG at 48 kHz (Common Voice's rate), resample it to 16 kHz and clean its transcripts
(``prepare_corpus``), build the Turkish vocabulary from the training transcripts (``build_vocabulary``) and fine-tune
with CTC, with a new output layer for that vocabulary: the English-pretrained encoder, and the same architecture from
random initialisation, for the same steps, at each learning rate and seed of the grid. Held-out greedy CER and WER are
measured on Turkish clips of unseen sentences spoken by voices the training clips do not use.

    python -m scripts.wav2vec2_second_language        # the full run; results/wav2vec2/second_language.{json,png}
    python -m scripts.wav2vec2_second_language --ci   # a tiny run that only shows the script works

Resumable: pretraining checkpoints go to ``--work`` (a rerun resumes it), and each fine-tuning run writes its own file
under ``--work``/runs; a rerun skips finished runs and only aggregates them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib


matplotlib.use("Agg")
import jiwer  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from annotated.utils import fit, seed_everything  # noqa: E402
from annotated.wav2vec2 import (  # noqa: E402
    TURKISH_VOICES,
    CharTokenizer,
    Wav2Vec2ForCTC,
    Wav2Vec2ForPreTraining,
    build_vocabulary,
    ctc_loss_fn,
    embedded_config,
    make_corpus_plan,
    prepare_corpus,
    pretraining_loss_fn,
    random_turkish_sentence,
    speech_batches,
    synthesize_speech,
    transcribe,
    word_error_rate,
)
from scripts.wav2vec2_pretraining import machine_description, warmup_then_linear  # noqa: E402


FULL = dict(english_train=600, pre_steps=1500, pre_batch=16, pre_lr=1e-3, turkish_train=100, turkish_test=60,
            synthesis_rate=48_000, ctc_steps=300, batch=16, ctc_lrs=[5e-4, 2e-3], seeds=[0, 1, 2])
CI = dict(english_train=16, pre_steps=3, pre_batch=4, pre_lr=1e-3, turkish_train=8, turkish_test=4,
          synthesis_rate=48_000, ctc_steps=3, batch=4, ctc_lrs=[2e-3], seeds=[0, 1])
MASKING = dict(mask_time_prob=0.5, mask_time_min_masks=2)  # section 13's pretraining masks
STARTS = ("english", "random")


def english_encoder(size: dict, work: Path, progress: bool) -> tuple[Path, dict]:
    """Pretrain on the English clips (no transcripts) once; the encoder's weights are cached under ``work``."""
    path = work / "english_encoder.safetensors"
    info_path = work / "english_encoder.json"
    if path.is_file() and info_path.is_file():
        return path, json.loads(info_path.read_text())
    started = time.perf_counter()
    train_plan, _ = make_corpus_plan(size["english_train"], 0, seed=0)
    english = synthesize_speech(train_plan, seed=0)
    seed_everything(0)
    pretrainer = Wav2Vec2ForPreTraining(embedded_config(32, **MASKING))
    optimizer = torch.optim.AdamW(pretrainer.parameters(), lr=size["pre_lr"], weight_decay=0.01)
    history = fit(pretrainer, optimizer, pretraining_loss_fn, speech_batches(english, size["pre_batch"], seed=1),
                  size["pre_steps"], scheduler=warmup_then_linear(optimizer, 20, None), max_grad_norm=5.0, checkpoint_dir=work / "pretraining",
                  checkpoint_every=min(250, size["pre_steps"]), progress=progress, description="English pretraining")
    save_file({k: v.detach().cpu().contiguous() for k, v in pretrainer.wav2vec2.state_dict().items()}, path)
    info = {"english_minutes": round(english.seconds() / 60, 2), "steps": size["pre_steps"],
            "first_losses": round(float(np.mean(history.losses[:10])), 4) if history.losses else None,
            "last_losses": round(float(np.mean(history.losses[-10:])), 4) if history.losses else None,
            "seconds": round(time.perf_counter() - started, 1)}
    info_path.write_text(json.dumps(info, indent=1))
    return path, info


def turkish_corpora(size: dict):
    """Turkish clips synthesised at ``synthesis_rate``, then resampled to 16 kHz with their transcripts cleaned."""
    train_plan, test_plan = make_corpus_plan(size["turkish_train"], size["turkish_test"], seed=0,
                                             sentence=random_turkish_sentence, **TURKISH_VOICES)
    raw = synthesize_speech(train_plan + test_plan, seed=0, sampling_rate=size["synthesis_rate"])
    corpus = prepare_corpus(raw, "tr")
    train = corpus.subset(range(len(train_plan)))
    test = corpus.subset(range(len(train_plan), len(corpus)))
    return raw, train, test


def fine_tune(start: str, lr: float, seed: int, size: dict, train, test, tokenizer: CharTokenizer, encoder: Path,
              progress: bool) -> dict:
    """CTC fine-tuning with a new output layer for the Turkish vocabulary, from ``start``; held-out greedy CER/WER."""
    started = time.perf_counter()
    seed_everything(seed)
    model = Wav2Vec2ForCTC(embedded_config(len(tokenizer)))
    if start == "english":
        model.wav2vec2.load_state_dict(load_file(encoder))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    history = fit(model, optimizer, ctc_loss_fn, speech_batches(train, min(size["batch"], len(train)), tokenizer, seed=seed),
                  size["ctc_steps"], scheduler=warmup_then_linear(optimizer, 20, None), max_grad_norm=5.0, progress=progress,
                  description=f"CTC from {start}, lr {lr:g}, seed {seed}")
    greedy, _ = transcribe(model, test, tokenizer)
    return {"start": start, "lr": lr, "seed": seed, "ctc_losses": [round(x, 4) for x in history.losses],
            "cer": round(float(jiwer.cer(test.texts, [g if g else " " for g in greedy])), 4),
            "wer": round(word_error_rate(test.texts, greedy), 4),
            "examples": [list(pair) for pair in zip(test.texts[:3], greedy[:3])],
            "seconds": round(time.perf_counter() - started, 1)}


def summarise(runs: dict, settings: dict) -> dict:
    """Mean and seed spread per (start, lr); each start at its better learning rate; the finding."""
    rows = []
    for start in STARTS:
        for lr in settings["ctc_lrs"]:
            mine = [r for r in runs.values() if r["start"] == start and r["lr"] == lr]
            if mine:
                cer, wer = np.array([r["cer"] for r in mine]), np.array([r["wer"] for r in mine])
                rows.append({"start": start, "lr": lr, "seeds": len(mine),
                             "cer_mean": round(float(cer.mean()), 4), "cer_std": round(float(cer.std(ddof=1)) if len(mine) > 1 else 0.0, 4),
                             "cer_range": [float(cer.min()), float(cer.max())],
                             "wer_mean": round(float(wer.mean()), 4), "wer_std": round(float(wer.std(ddof=1)) if len(mine) > 1 else 0.0, 4),
                             "wer_range": [float(wer.min()), float(wer.max())]})
    best = {start: min((r for r in rows if r["start"] == start), key=lambda r: r["cer_mean"]) for start in STARTS
            if any(r["start"] == start for r in rows)}
    finding = None
    if len(best) == 2:
        english, random = best["english"], best["random"]
        if english["cer_range"][1] < random["cer_range"][0]:
            finding = "helps"  # every English-pretrained seed beats every random-init seed, each at its better lr
        elif random["cer_range"][1] < english["cer_range"][0]:
            finding = "hurts"
        else:
            finding = "within spread"
    return {"rows": rows, "best": best, "finding": finding}


def plot(results: dict, path: Path) -> None:
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    labels = {"english": "English-pretrained encoder", "random": "random initialisation"}
    for offset, start in ((-0.1, "english"), (0.1, "random")):
        runs = [r for r in results["runs"].values() if r["start"] == start]
        lrs = results["settings"]["ctc_lrs"]
        xs = [lrs.index(r["lr"]) + offset for r in runs]
        left.scatter(xs, [r["cer"] for r in runs], label=labels[start], alpha=0.8)
        means = [np.mean([r["cer"] for r in runs if r["lr"] == lr] or [np.nan]) for lr in lrs]
        left.plot([i + offset for i in range(len(lrs))], means, "_", markersize=25, color="black")
    left.set_xticks(range(len(results["settings"]["ctc_lrs"])), [f"CTC lr {lr:g}" for lr in results["settings"]["ctc_lrs"]])
    left.set(ylabel="held-out CER (greedy)", title="Turkish, unseen voices: one dot per seed, bar = mean")
    left.legend(fontsize=8)
    best = results["summary"]["best"]
    for start, row in best.items():
        for run in results["runs"].values():
            if run["start"] == start and run["lr"] == row["lr"]:
                losses = run["ctc_losses"]
                smooth = np.convolve(losses, np.ones(10) / 10, mode="valid") if len(losses) >= 10 else losses
                right.plot(smooth, color="C0" if start == "english" else "C1", alpha=0.7,
                           label=f"{labels[start]}, lr {row['lr']:g}" if run["seed"] == results["settings"]["seeds"][0] else None)
    right.set(xlabel="CTC step", ylabel="CTC loss (train, smoothed)", title="CTC fine-tuning on Turkish")
    right.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ci", action="store_true", help="tiny sizes, only to show the script runs")
    parser.add_argument("--work", type=Path, default=Path("checkpoints/wav2vec2_second_language"))
    parser.add_argument("--out", type=Path, default=Path("results/wav2vec2"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the committed run used one)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    size = CI if args.ci else FULL
    progress = not args.no_progress
    torch.set_num_threads(args.threads)
    suffix = "_ci" if args.ci else ""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.work / "runs").mkdir(parents=True, exist_ok=True)
    results_path = args.out / f"second_language{suffix}.json"
    grid_path = args.work / "grid.json"
    if grid_path.is_file() and json.loads(grid_path.read_text()) != size:
        raise ValueError(f"{args.work} holds runs of another grid ({grid_path}): use another --work or remove it")
    grid_path.write_text(json.dumps(size, indent=1))

    encoder, pretraining = english_encoder(size, args.work, progress)
    raw, train, test = turkish_corpora(size)
    vocabulary = build_vocabulary(train.texts, "tr")
    tokenizer = CharTokenizer.from_vocabulary(vocabulary)
    todo = [(start, lr, seed) for seed in size["seeds"] for lr in size["ctc_lrs"] for start in STARTS]
    for start, lr, seed in todo:
        run_path = args.work / "runs" / f"{start}_lr{lr:g}_seed{seed}.json"
        if not run_path.is_file():
            run = fine_tune(start, lr, seed, size, train, test, tokenizer, encoder, progress)
            partial = run_path.with_suffix(".partial")
            partial.write_text(json.dumps(run))
            partial.replace(run_path)
    runs = {path.stem: json.loads(path.read_text()) for path in sorted((args.work / "runs").glob("*.json"))}
    settings = dict(size, masking=MASKING, vocabulary=vocabulary, english_minutes=pretraining["english_minutes"],
                    turkish_train_minutes=round(train.seconds() / 60, 2), turkish_test_minutes=round(test.seconds() / 60, 2),
                    synthesis_rate=raw.sampling_rate, model_rate=train.sampling_rate,
                    train_voices=sorted({u.voice for u in train.utterances}), test_voices=sorted({u.voice for u in test.utterances}))
    results = {"command": "python -m scripts.wav2vec2_second_language" + (" --ci" if args.ci else ""),
               "machine": machine_description(), "settings": settings, "pretraining": pretraining, "runs": runs,
               "seconds": round(pretraining["seconds"] + sum(r["seconds"] for r in runs.values()))}
    results["summary"] = summarise(runs, settings)
    results_path.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    plot(results, args.out / f"second_language{suffix}.png")
    for row in results["summary"]["rows"]:
        print(f"CTC from {row['start']:>7s}, lr {row['lr']:g}: held-out CER {row['cer_mean']:.3f} ± {row['cer_std']:.3f}, "
              f"WER {row['wer_mean']:.3f} ± {row['wer_std']:.3f} ({row['seeds']} seeds)")
    print(f"finding: English pretraining {results['summary']['finding']}")
    return results


if __name__ == "__main__":
    main()
