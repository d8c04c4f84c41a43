"""LSH attention against full and local attention at equal budget (the Reformer chapter's longer experiment).

One seeded command trains the chapter's character-level ``ReformerLM`` (section 8: four layers, local / LSH / local /
LSH, width 64, two heads of 32, chunks of 64, 16 buckets, one round) on the chapter's text (the first 3 MB of the
Python standard library's source, the last 5% held out; ``annotated.reformer.stdlib_source_text``) with the chapter's
recipe (``annotated.reformer.train_language_model``: AdamW, one-cycle schedule peaking at 1e-2, 4 windows a step;
200 steps by default, see ``STEPS``),
three times over, changing only what the two LSH layers attend to:

* ``lsh``:   the chapter's model unchanged (16 buckets, chunks of 64, each chunk sees itself and the previous one);
* ``full``:  the same layers with one chunk as long as the sequence: every character attends to every earlier one
             (shared query-key full attention, the baseline of the Reformer paper's comparison);
* ``local``: the same layers with a single bucket: nothing is reordered, so each chunk of 64 sees itself and the
             previous chunk (shared query-key local attention). With the two local layers the model is local only.

The three settings have the same modules, so the same parameters (count and, for a seed, initial values); the batches
come in the same order (``random_batches``' fixed seed), and a seed changes the initial weights and the LSH
rotations. Each run records the held-out bits per character over every held-out window (and over the chapter's first
16), its training loss (a point every ``--curve-every`` steps, the mean of the steps since the previous point) and
its training time. The memory of one training step (forward, backward through the reversible layers, optimiser step,
batch of 4) is measured per setting in a fresh process: the peak resident set size (VmHWM) minus the resident size
just before the step, after one warm-up step (``benchmarks/reformer.py``'s method).

    python -m scripts.reformer_attention_budget                               # 3 settings x seeds 0 1 2 (one thread)
    python -m scripts.reformer_attention_budget --steps 3 --length 128 --seeds 0 --out /tmp/x   # seconds

Resumable: every run writes ``<out>/runs/<setting>_seed<k>.json``; a rerun skips the runs whose file exists and
only aggregates them into ``<out>/attention_budget.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


SETTINGS = ("lsh", "full", "local")
# 200 steps, not the chapter's 500: on one CPU thread a full-attention step at 1,024 characters takes about four times
# as long as an LSH step (1.5 s against 0.4 s measured), so 500 steps x 3 settings x 3 seeds would take about an hour;
# 200 keep the nine runs near 25 minutes
STEPS = 200
CHAPTER_LENGTH, CHAPTER_TEXT_BYTES, CHAPTER_HELD_OUT_WINDOWS = 1024, 3_000_000, 16
ROOT = Path(__file__).resolve().parent.parent


def config_for(setting: str, length: int):
    """The chapter's configuration (section 8) for sequences of ``length``, with the LSH layers made ``setting``."""
    from annotated.reformer import ReformerConfig

    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
    if length < 64 or length % 64:
        raise ValueError(f"length must be a multiple of 64 (the chunk length), got {length}")
    lsh_chunk = length if setting == "full" else 64  # one chunk holding the whole sequence: full attention
    buckets = 1 if setting == "local" else 16  # one bucket: no reordering, chunked (local) attention
    return ReformerConfig(
        vocab_size=256, hidden_size=64, num_attention_heads=2, attention_head_size=32, feed_forward_size=128,
        attn_layers=("local", "lsh", "local", "lsh"), local_attn_chunk_length=64, lsh_attn_chunk_length=lsh_chunk,
        num_buckets=buckets, num_hashes=1, axial_pos_shape=(32, length // 32), axial_pos_embds_dim=(16, 48),
        chunk_size_feed_forward=0)


def chapter_data(length: int):
    """Training windows and all held-out windows of ``length + 1`` bytes, split as in the chapter."""
    from annotated.reformer import byte_windows, stdlib_source_text

    text = stdlib_source_text(max_bytes=CHAPTER_TEXT_BYTES)
    split = int(len(text) * 0.95)
    return byte_windows(text[:split], length), byte_windows(text[split:], length)


def train_run(setting: str, seed: int, steps: int, length: int, curve_every: int, progress: bool,
              eval_windows: int | None = None) -> dict:
    """Train one (setting, seed) in this process, as the chapter does, and return its record."""
    import torch

    from annotated.reformer import LanguageModelTraining, ReformerLM, bits_per_byte, train_language_model
    from annotated.utils import seed_everything

    torch.set_num_threads(1)
    train_windows, held_out = chapter_data(length)
    held_out = held_out[:eval_windows]
    config = config_for(setting, length)
    training = LanguageModelTraining(batch_size=4, steps=steps, learning_rate=1e-2)
    seed_everything(seed)
    model = ReformerLM(config)
    started = time.perf_counter()
    history = train_language_model(model, train_windows, training, f"{setting}, seed {seed}", progress=progress)
    seconds = time.perf_counter() - started
    bits = np.array(history.losses) / math.log(2)
    ends = list(range(curve_every, steps + 1, curve_every)) or [steps]
    if ends[-1] != steps:
        ends.append(steps)
    starts = [0] + ends[:-1]
    return dict(
        setting=setting, seed=seed, steps=steps, length=length,
        parameters=sum(p.numel() for p in model.parameters()),
        held_out_bpc=bits_per_byte(model, held_out), held_out_windows=len(held_out),
        chapter_held_out_bpc=bits_per_byte(model, held_out[:CHAPTER_HELD_OUT_WINDOWS]),
        curve_steps=ends, curve_training_bpc=[float(bits[a:b].mean()) for a, b in zip(starts, ends)],
        training_seconds=round(seconds, 1), config=dataclasses.asdict(config),
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} thread", torch=torch.__version__)


def memory_point(setting: str, length: int) -> dict:
    """Peak extra resident memory (MiB) of one training step of ``setting``, measured in this (fresh) process."""
    import gc

    import torch

    from annotated.reformer import ReformerLM, language_model_loss
    from benchmarks.reformer import reset_peak, rss_kib

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = ReformerLM(config_for(setting, length))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    batch = (torch.randint(0, 256, (4, length + 1)),)

    def step() -> None:
        optimizer.zero_grad(set_to_none=False)
        language_model_loss(model, batch).backward()
        optimizer.step()

    step()  # warm-up: gradients, optimiser state and libraries are allocated outside the peak
    gc.collect()
    reset_peak()
    before = rss_kib("VmRSS")
    started = time.perf_counter()
    step()
    seconds = time.perf_counter() - started
    return dict(setting=setting, length=length, peak_mib=round((rss_kib("VmHWM") - before) / 1024, 1),
                step_seconds=round(seconds, 3))


def measure_memory(setting: str, length: int) -> dict:
    """``memory_point`` in a fresh subprocess, every large tensor in its own mapping (as in benchmarks/reformer.py)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "scripts.reformer_attention_budget", "--memory-point", setting,
                          "--length", str(length)], capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"memory point {setting} failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict], memory: dict) -> dict:
    """Per setting: mean and sample standard deviation over seeds of the held-out bits per character, per-seed
    values, mean training seconds, parameters and memory; paired gaps to full attention (same seed); the finding."""
    per = {}
    for setting in SETTINGS:
        mine = sorted((r for r in runs if r["setting"] == setting), key=lambda r: r["seed"])
        if not mine:
            continue
        values = [r["held_out_bpc"] for r in mine]
        per[setting] = dict(seeds=[r["seed"] for r in mine], held_out_bpc=values, mean=float(np.mean(values)),
                            std=float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                            training_seconds_mean=float(np.mean([r["training_seconds"] for r in mine])),
                            parameters=mine[0]["parameters"], **{k: v for k, v in memory.get(setting, {}).items()
                                                                 if k in ("peak_mib", "step_seconds")})
    finding = {}
    if "full" in per:
        full = {r["seed"]: r["held_out_bpc"] for r in runs if r["setting"] == "full"}
        for setting in ("lsh", "local"):
            if setting not in per:
                continue
            gaps = [r["held_out_bpc"] - full[r["seed"]] for r in runs if r["setting"] == setting and r["seed"] in full]
            finding[f"{setting}_minus_full_per_seed"] = gaps
            finding[f"{setting}_minus_full_mean"] = float(np.mean(gaps)) if gaps else None
        if "lsh" in per and "local" in per:
            lsh = {r["seed"]: r["held_out_bpc"] for r in runs if r["setting"] == "lsh"}
            gaps = [r["held_out_bpc"] - lsh[r["seed"]] for r in runs if r["setting"] == "local" and r["seed"] in lsh]
            finding["local_minus_lsh_per_seed"] = gaps
            seeds = sorted(set(full) & set(lsh))
            by_seed = {r["seed"]: {} for r in runs}
            for r in runs:
                by_seed[r["seed"]][r["setting"]] = r["held_out_bpc"]
            orders = [" < ".join(sorted(by_seed[k], key=by_seed[k].get)) for k in seeds
                      if len(by_seed[k]) == len(per)]
            finding["order_per_seed"] = orders  # best (lowest bits per character) first
            finding["same_order_on_every_seed"] = len(set(orders)) == 1
            finding["seed_std_largest"] = max(per[s]["std"] for s in per)
            finding["seed_std_smallest"] = min(per[s]["std"] for s in per)
            gaps = [abs(g) for name in ("lsh_minus_full_per_seed", "local_minus_full_per_seed", "local_minus_lsh_per_seed")
                    for g in finding[name]]
            finding["largest_paired_gap"] = max(gaps)
            # the three attentions differ (same seed) by less than one setting's results differ between seeds
            finding["paired_gaps_below_every_seed_std"] = max(gaps) < finding["seed_std_smallest"]
    return dict(settings=per, finding=finding)


def plot(results: dict):
    """Training bits per character against step per setting (seeds faint, mean bold), held-out bits per character
    per seed, and the memory of one training step."""
    import matplotlib.pyplot as plt

    figure, (curve, held, memory) = plt.subplots(1, 3, figsize=(13, 4), width_ratios=(2.2, 1, 1))
    summary = results["summary"]["settings"]
    for index, setting in enumerate(summary):
        colour = f"C{index}"
        runs = [r for r in results["runs"] if r["setting"] == setting]
        for run in runs:
            curve.plot(run["curve_steps"], run["curve_training_bpc"], color=colour, alpha=0.3, lw=1)
        mean = np.mean([r["curve_training_bpc"] for r in runs], axis=0)
        curve.plot(runs[0]["curve_steps"], mean, color=colour, lw=2.2, label=f"{setting} (mean of {len(runs)} seeds)")
        s = summary[setting]
        held.scatter([index] * len(s["held_out_bpc"]), s["held_out_bpc"], color=colour, alpha=0.5, s=18)
        held.errorbar([index], [s["mean"]], yerr=[s["std"]], color=colour, marker="_", ms=18, capsize=4, lw=2)
        if "peak_mib" in s:
            memory.bar(index, s["peak_mib"], color=colour)
            memory.text(index, s["peak_mib"], f"{s['peak_mib']:.0f}", ha="center", va="bottom", fontsize=8)
    curve.set(xlabel="step", ylabel="training loss (bits per character)", ylim=(None, 5.5),
              title=f"training, sequences of {results['length']:,} characters")
    curve.legend(fontsize=8)
    names = list(summary)
    held.set(xticks=range(len(names)), xticklabels=names, ylabel="held-out bits per character",
             title="held out: seeds, mean ± std")
    memory.set(xticks=range(len(names)), xticklabels=names, ylabel="MiB",
               title="peak extra memory,\none training step (batch 4)")
    for axis in (curve, held, memory):
        axis.grid(alpha=0.3)
    figure.suptitle(results["command"], fontsize=9)
    figure.tight_layout()
    return figure


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--length", type=int, default=CHAPTER_LENGTH)
    parser.add_argument("--curve-every", type=int, default=25)
    parser.add_argument("--eval-windows", type=int, default=None, help="held-out windows scored (default: all)")
    parser.add_argument("--out", type=Path, default=Path("results/reformer"))
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--memory-point", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_point:
        point = memory_point(args.memory_point, args.length)
        print(json.dumps(point))
        return point
    from tqdm.auto import tqdm

    progress = not args.no_progress
    runs_dir = args.out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    todo = [(setting, seed) for seed in args.seeds for setting in args.settings]
    trained = []
    bar = tqdm(todo, desc="runs", disable=not progress)
    for setting, seed in bar:
        path = runs_dir / f"{setting}_seed{seed}_{args.steps}steps_{args.length}.json"
        if path.is_file():
            continue
        bar.set_postfix_str(f"{setting}, seed {seed}")
        record = train_run(setting, seed, args.steps, args.length, args.curve_every, progress, args.eval_windows)
        path.write_text(json.dumps(record, indent=1))
        trained.append(path.name)
    runs = [json.loads((runs_dir / f"{s}_seed{k}_{args.steps}steps_{args.length}.json").read_text()) for s, k in todo]
    memory_path = args.out / f"memory_{args.length}.json"
    memory = json.loads(memory_path.read_text()) if memory_path.is_file() else {}
    for setting in args.settings:
        if setting not in memory:
            memory[setting] = measure_memory(setting, args.length)
            memory_path.write_text(json.dumps(memory, indent=1))
    command = "python -m scripts.reformer_attention_budget" + (
        "" if (args.steps, args.length, args.seeds) == (STEPS, CHAPTER_LENGTH, [0, 1, 2])
        else f" --steps {args.steps} --length {args.length} --seeds {' '.join(map(str, args.seeds))}")
    results = dict(command=command, steps=args.steps, length=args.length, seeds=args.seeds, settings=args.settings,
                   memory_measured="peak resident memory (VmHWM) minus resident memory before one training step "
                                   "(forward, reversible backward, AdamW step; batch 4), after a warm-up step, "
                                   "fresh process, one thread",
                   runs=runs, memory=memory, trained_now=trained,
                   run_seconds_total=round(sum(r["training_seconds"] for r in runs), 1),
                   machine=runs[0]["machine"] if runs else None)
    results["summary"] = summarise(runs, memory)
    (args.out / "attention_budget.json").write_text(json.dumps(results, indent=1))
    figure = plot(results)
    figure.savefig(args.out / "attention_budget.png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return results


if __name__ == "__main__":
    main()
