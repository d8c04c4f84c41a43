"""Memory and time of the Reformer's pieces on CPU, and the annotated model against transformers' Reformer.

    python benchmarks/reformer.py                 # full sweep (1k to 32k tokens), writes benchmarks/results/reformer.json
    python benchmarks/reformer.py --quick         # a reduced sweep (seconds), printed only
    python benchmarks/reformer.py --threads 1     # torch threads per process (1 is steadier on a shared machine)

Every memory point runs in a fresh subprocess: one warm-up step, then the measured step, reported as the process's
peak resident set size (VmHWM) minus its resident size just before that step. Earlier points cannot hide or inflate
anything; the warm-up keeps one-off costs (libraries, thread pools, parameter gradients) out of the peak.
The reported time is the median of the measured step and two more steps after it.
Full attention points predicted to need more than FULL_ATTENTION_CAP_GIB are not run (reported as "not run (cap)").
Timings are wall-clock on a shared machine: compare ratios from one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "benchmarks" / "results" / "reformer.json"
FULL_ATTENTION_CAP_GIB = 6.0  # full attention points predicted to need more are not run (and reported as such)
TIMING_REPEATS = 3  # the measured step plus two more; the median is reported


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the peak covers only what follows."""
    Path("/proc/self/clear_refs").write_text("5")


def point(spec: dict) -> dict:
    """Run one measurement in this (fresh) process and return peak extra memory (MiB) and seconds."""
    import torch

    from annotated.reformer import (
        ChunkedFeedForward,
        FullSelfAttention,
        LocalSelfAttention,
        LSHSelfAttention,
        ReformerConfig,
        ReformerLM,
    )

    torch.manual_seed(0)
    torch.set_num_threads(spec.get("threads", 2))
    kind, n = spec["kind"], spec["length"]
    train = True
    if kind in ("full", "local", "lsh", "lsh-factorised"):
        hidden, heads, head = 64, 2, 32
        if kind == "full":
            module = FullSelfAttention(hidden, heads, head)
        elif kind == "local":
            module = LocalSelfAttention(hidden, heads, head, chunk_length=64)
        elif kind == "lsh":  # n / 64 buckets in one rotation of width n / 128: the hashing itself grows as n^2 / 128
            module = LSHSelfAttention(hidden, heads, head, chunk_length=64, num_buckets=max(2, n // 64), num_hashes=2)
        else:  # the same number of buckets, factorised (b1, b2) with b1 * b2 = n / 64: a rotation of width (b1 + b2) / 2
            power = max(2, (n // 64).bit_length() - 1)
            factors = (2 ** (power // 2), 2 ** (power - power // 2))
            module = LSHSelfAttention(hidden, heads, head, chunk_length=64, num_buckets=factors, num_hashes=2)
        x = torch.randn(1, n, hidden, requires_grad=True)
        run = lambda: module(x).square().mean().backward()  # noqa: E731
    elif kind == "feed_forward":
        module = ChunkedFeedForward(64, 4096, chunk_size=spec["chunk"])
        x = torch.randn(1, n, 64)
        train = False
        run = lambda: module(x)  # noqa: E731
    elif kind == "model":
        config = ReformerConfig(vocab_size=256, hidden_size=128, attention_head_size=64, feed_forward_size=512,
                                attn_layers=("local", "lsh") * (spec["layers"] // 2), num_buckets=n // 64,
                                axial_pos_shape=(64, n // 64), axial_pos_embds_dim=(32, 96), reversible=spec["reversible"])
        module = ReformerLM(config)
        ids = torch.randint(0, 256, (1, n))
        run = lambda: module(ids).logsumexp(-1).mean().backward()  # noqa: E731
    else:
        raise ValueError(f"unknown kind {kind!r}")
    with torch.set_grad_enabled(train):
        run()  # warm-up: libraries, thread pools and parameter gradients are allocated once, outside the peak
        module.zero_grad(set_to_none=False)
        if getattr(x if kind != "model" else ids, "grad", None) is not None:
            x.grad = None
        gc.collect()
        reset_peak()
        before = rss_kib("VmRSS")
        start = time.perf_counter()
        run()
        times = [time.perf_counter() - start]
        peak = rss_kib("VmHWM")
        for _ in range(TIMING_REPEATS - 1):  # more steps for a steadier time; the peak is already read
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    return {**spec, "peak_mib": round((peak - before) / 1024, 1), "seconds": round(statistics.median(times), 3)}


def measure(spec: dict, threads: int) -> dict:
    # A fixed mmap threshold: every large tensor gets its own mapping, returned to the system when freed, so the
    # resident size follows live memory (glibc's adaptive threshold would recycle the warm-up's memory unseen).
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}
    spec = {**spec, "threads": threads}
    out = subprocess.run([sys.executable, __file__, "--point", json.dumps(spec)], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {**spec, "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def versus_transformers(length: int, repeats: int, threads: int) -> dict:
    """Forward+backward seconds of transformers' ReformerModelWithLMHead and ReformerLM with the same weights."""
    import torch
    import transformers

    from annotated.reformer import reformer_from_transformers

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = transformers.ReformerConfig(
        vocab_size=256, hidden_size=128, num_attention_heads=2, attention_head_size=64, feed_forward_size=512,
        attn_layers=["local", "lsh", "local", "lsh"], is_decoder=True, local_attn_chunk_length=64,
        lsh_attn_chunk_length=64, num_buckets=length // 64, num_hashes=2, axial_pos_shape=[64, length // 64],
        axial_pos_embds_dim=[32, 96], max_position_embeddings=length, hidden_dropout_prob=0.0,
        local_attention_probs_dropout_prob=0.0, lsh_attention_probs_dropout_prob=0.0)
    hf = transformers.ReformerModelWithLMHead(config).train()
    ours = reformer_from_transformers(hf).train()
    ids = torch.randint(0, 256, (2, length))
    times: dict[str, list[float]] = {"transformers": [], "annotated": []}
    for _ in range(repeats):  # interleaved, so that load on a shared machine hits both alike
        for name, step in (("transformers", lambda: hf(ids).logits), ("annotated", lambda: ours(ids))):
            start = time.perf_counter()
            step().logsumexp(-1).mean().backward()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {"length": length, "batch": 2, "repeats": repeats, "median_seconds": medians,
            "ratio_annotated_over_transformers": round(medians["annotated"] / medians["transformers"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small sweep, printed and not saved")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every measurement (default 2)")
    parser.add_argument("--point", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.point:
        print(json.dumps(point(json.loads(args.point))))
        return
    lengths = [1024, 2048] if args.quick else [1024, 2048, 4096, 8192, 16384, 32768]
    command = "python benchmarks/reformer.py" + (" --quick" if args.quick else "")
    command += f" --threads {args.threads}" if args.threads != 2 else ""
    results: dict = {"command": command,
                     "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
                     "threads": args.threads, "full_attention_cap_gib": FULL_ATTENTION_CAP_GIB,
                     "timing": f"median of {TIMING_REPEATS} steps after one warm-up step",
                     "attention": [], "reversible": [], "feed_forward": []}
    started = time.time()
    for n in lengths:
        for kind in ("full", "local", "lsh", "lsh-factorised"):
            # full attention's memory is quadratic: extrapolate from the longest measured point, or, before any,
            # count dots, probabilities and their gradients (2 heads, float32)
            measured = [r for r in results["attention"] if r["kind"] == "full" and "peak_mib" in r]
            if measured:
                predicted_gib = measured[-1]["peak_mib"] / 1024 * (n / measured[-1]["length"]) ** 2
                basis = f"quadratic extrapolation from {measured[-1]['length']} tokens"
            else:
                predicted_gib, basis = 4 * 2 * n * n * 4 / 2**30, "counting the n x n tensors"
            if kind == "full" and predicted_gib > FULL_ATTENTION_CAP_GIB:
                row = {"kind": kind, "length": n, "predicted_gib": round(predicted_gib, 1),
                       "skipped": f"not run (cap {FULL_ATTENTION_CAP_GIB:g} GiB; would need about {predicted_gib:.0f} GiB, {basis})"}
            else:
                row = measure({"kind": kind, "length": n}, args.threads)
            results["attention"].append(row)
            print(row, flush=True)
    for layers in ([2, 4] if args.quick else [2, 4, 8]):
        for reversible in (False, True):
            row = measure({"kind": "model", "length": 1024 if args.quick else 2048, "layers": layers, "reversible": reversible},
                          args.threads)
            results["reversible"].append(row)
            print(row, flush=True)
    for chunk in (0, 1024, 128):
        row = measure({"kind": "feed_forward", "length": 4096 if args.quick else 16384, "chunk": chunk}, args.threads)
        results["feed_forward"].append(row)
        print(row, flush=True)
    results["versus_transformers"] = versus_transformers(1024 if args.quick else 2048, 2 if args.quick else 5, args.threads)
    print(results["versus_transformers"], flush=True)
    results["seconds"] = round(time.time() - started)
    if not args.quick:
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {RESULT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
