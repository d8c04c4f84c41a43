"""Forward+backward time of annotated.wav2vec2 vs transformers on the same weights, and greedy real-time factor.

    python benchmarks/wav2vec2.py            # the chapter's embedded model size
    python benchmarks/wav2vec2.py --base     # the paper's BASE configuration (slow on a CPU)

Timings are printed side by side, never asserted. On a shared machine they are noisy: repeat and take the median.

Measured on 2026-11-25 on an idle machine (the CPU of a lent GPU host, 16 cores, 2 torch threads, torch 2.11,
transformers 5.17; the project's own 2-core machine was loaded by other jobs), ``--repeats 7`` and ``--base --repeats 3``:

| model | forward+backward ours / transformers | greedy inference ours / transformers | real-time factor (ours) |
|---|---:|---:|---:|
| embedded (0.5 M) | 0.062 s / 0.067 s = 0.93 | 0.016 s / 0.017 s = 0.96 | 0.0013 |
| BASE (95 M) | 4.01 s / 4.43 s = 0.90 | 0.89 s / 1.02 s = 0.87 | 0.074 |
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import transformers

from annotated.wav2vec2 import Wav2Vec2Config, ctc_greedy_decode, embedded_config, wav2vec2_from_transformers


def median_seconds(step, repeats: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", action="store_true", help="the paper's BASE size instead of the embedded model")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ours_config = Wav2Vec2Config(vocab_size=32) if args.base else embedded_config(32)
    fields = {k: v for k, v in vars(ours_config).items() if k != "sampling_rate"}
    fields.update(layerdrop=0.0, mask_time_prob=0.0)
    torch.manual_seed(0)
    theirs = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**fields, attn_implementation="sdpa")).train()
    ours = wav2vec2_from_transformers(theirs).train()
    samples = int(args.seconds * 16_000)
    values = torch.randn(args.batch, samples)
    labels = torch.randint(3, 32, (args.batch, int(args.seconds * 12)))

    def train_step(model, call):
        def step():
            model.zero_grad(set_to_none=True)
            call().backward()
        return step

    t_theirs = median_seconds(train_step(theirs, lambda: theirs(values, labels=labels).loss), args.repeats)
    t_ours = median_seconds(train_step(ours, lambda: ours(values, labels=labels).loss), args.repeats)
    ours.eval()
    theirs.eval()

    def infer(model, ours_api):
        def step():
            with torch.no_grad():
                logits = model(values).logits
                ctc_greedy_decode(logits)
        return step

    i_theirs = median_seconds(infer(theirs, False), args.repeats)
    i_ours = median_seconds(infer(ours, True), args.repeats)
    audio_seconds = args.batch * args.seconds
    name = "BASE (95 M)" if args.base else "embedded (0.5 M)"
    print(f"model {name}, batch {args.batch} x {args.seconds} s, {torch.get_num_threads()} threads, CPU")
    print(f"{'':28s} {'annotated':>10s} {'transformers':>13s} {'ratio':>7s}")
    print(f"{'forward+backward (s)':28s} {t_ours:10.3f} {t_theirs:13.3f} {t_ours / t_theirs:7.2f}")
    print(f"{'greedy inference (s)':28s} {i_ours:10.3f} {i_theirs:13.3f} {i_ours / i_theirs:7.2f}")
    print(f"{'real-time factor (greedy)':28s} {i_ours / audio_seconds:10.4f} {i_theirs / audio_seconds:13.4f}")


if __name__ == "__main__":
    main()
