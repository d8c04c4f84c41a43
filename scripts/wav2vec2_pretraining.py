"""Does self-supervised pretraining help CTC fine-tuning on little labelled audio? (The chapter's longer experiment.)

One seeded command: synthesise the corpus, pretrain a small wav2vec 2.0 on all training clips without transcripts,
then fine-tune it with CTC on a small labelled subset, and fine-tune the same architecture from random initialisation
on the same subset for the same number of steps; report held-out WER (greedy and with the trigram LM) for both.

    python scripts/wav2vec2_pretraining.py                 # the full run; results in results/wav2vec2/
    python scripts/wav2vec2_pretraining.py --ci            # a tiny run that only shows the script works

Every stage trains through ``annotated.utils.fit`` with safetensors checkpoints under ``--work``: re-running the same
command after an interruption resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from annotated.utils import fit, loss_curve, seed_everything
from annotated.wav2vec2 import (
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

FULL = dict(num_train=600, num_test=100, labelled=100, pre_steps=400, ctc_steps=150, batch=16, lr=2e-3)
CI = dict(num_train=24, num_test=8, labelled=8, pre_steps=3, ctc_steps=3, batch=4, lr=2e-3)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ci", action="store_true", help="tiny sizes, only to show the script runs")
    parser.add_argument("--work", type=Path, default=Path("checkpoints/wav2vec2_pretraining"))
    parser.add_argument("--out", type=Path, default=Path("results/wav2vec2"))
    args = parser.parse_args(argv)
    size = CI if args.ci else FULL
    torch.set_num_threads(2)
    started = time.perf_counter()
    train_plan, test_plan = make_corpus_plan(size["num_train"], size["num_test"], seed=0)
    corpus = synthesize_speech(train_plan + test_plan, seed=0)
    train_set = corpus.subset(range(len(train_plan)))
    test_set = corpus.subset(range(len(train_plan), len(corpus)))
    labelled = train_set.subset(range(size["labelled"]))
    tokenizer = CharTokenizer.from_texts(train_set.texts)
    lm = NGramLM(labelled.texts, order=3)

    def scheduler(optimizer):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 20))

    seed_everything(0)
    pretrainer = Wav2Vec2ForPreTraining(embedded_config(len(tokenizer), mask_time_prob=0.5, mask_time_min_masks=2))
    optimizer = torch.optim.AdamW(pretrainer.parameters(), lr=size["lr"], weight_decay=0.01)
    pre = fit(pretrainer, optimizer, pretraining_loss_fn, speech_batches(train_set, size["batch"], seed=1),
              size["pre_steps"], scheduler=scheduler(optimizer), max_grad_norm=5.0, description="pretraining",
              checkpoint_dir=args.work / "pretraining", checkpoint_every=100)

    results: dict = {"pretraining_losses": pre.losses}
    for name in ("pretrained", "scratch"):
        seed_everything(1)
        model = Wav2Vec2ForCTC(embedded_config(len(tokenizer)))
        if name == "pretrained":
            missing, unexpected = model.wav2vec2.load_state_dict(pretrainer.wav2vec2.state_dict())
        optimizer = torch.optim.AdamW(model.parameters(), lr=size["lr"], weight_decay=0.01)
        history = fit(model, optimizer, ctc_loss_fn, speech_batches(labelled, min(size["batch"], len(labelled)), tokenizer, seed=2),
                      size["ctc_steps"], scheduler=scheduler(optimizer), max_grad_norm=5.0, description=f"CTC ({name})",
                      checkpoint_dir=args.work / f"ctc_{name}", checkpoint_every=100)
        greedy, log_probs = transcribe(model, test_set, tokenizer)
        with_lm = [ctc_prefix_beam_search(lp, tokenizer, lm, beam_width=16, alpha=0.5, beta=1.0) for lp in log_probs]
        results[name] = {
            "ctc_losses": history.losses,
            "greedy_wer": word_error_rate(test_set.texts, greedy),
            "lm_wer": word_error_rate(test_set.texts, with_lm),
            "examples": list(zip(test_set.texts[:5], greedy[:5])),
        }
    results["settings"] = dict(size, clips_labelled_minutes=round(labelled.seconds() / 60, 2),
                               clips_unlabelled_minutes=round(train_set.seconds() / 60, 2))
    results["command"] = "python scripts/wav2vec2_pretraining.py" + (" --ci" if args.ci else "")
    results["seconds"] = round(time.perf_counter() - started)
    results["machine"] = f"{platform.machine()} CPU, {torch.get_num_threads()} threads ({platform.platform()})"
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "_ci" if args.ci else ""
    (args.out / f"pretrain_vs_scratch{suffix}.json").write_text(json.dumps(results, indent=1))
    figure = loss_curve({f"CTC from {n} (train)": results[n]["ctc_losses"] for n in ("pretrained", "scratch")},
                        smooth=10 if not args.ci else 1, title="CTC fine-tuning on the labelled subset")
    figure.savefig(args.out / f"pretrain_vs_scratch{suffix}.png", dpi=100)
    for name in ("pretrained", "scratch"):
        print(f"{name:10s}: held-out WER greedy {results[name]['greedy_wer']:.3f}, with LM {results[name]['lm_wer']:.3f}")
    return results


if __name__ == "__main__":
    main()
