"""DDPM sample quality against network calls: DDIM at 5 to 100 steps and DDPM with all T steps. (The DDPM chapter's
longer experiment.)

One seeded command: build the chapter's embedded digits and split (scikit-learn's 8x8 digits, 1,500 for training,
297 held out), train the chapter's embedded ``DDPMConfig`` with ``annotated.ddpm.train_ddpm`` for each training seed,
and sample from the EMA with DDIM (5, 10, 20, 50, 100 steps) and DDPM (all T steps), several sampling seeds per
training seed. Each sample set is scored by the Fréchet distance between Gaussian fits of the judge's features of the
samples and of the held-out real digits (FID's recipe, with the chapter's judge classifier in place of Inception).
The judge is the chapter's: a seeded MLP trained on the training digits; its features are its 10 logits, so that a
few hundred samples estimate the 10 x 10 covariance well. The noise floor is the same distance between a random
subset of real training digits, of the same size as a sample set, and the held-out digits, over many random subsets.
Pure noise and the untrained network (DDIM, 50 steps) mark the far end.

    python -m scripts.ddpm_sampler_quality        # the full run; results/ddpm/sampler_quality.{json,png}
    python -m scripts.ddpm_sampler_quality --ci   # a tiny run (3 training steps, T = 20) that only shows it works

Resumable: training checkpoints go to ``--work`` (a rerun resumes a training run where it stopped), and the JSON is
rewritten after every scored sample set; a rerun skips the finished (training seed, sampler, sampling seed) entries.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from tqdm.auto import tqdm

from annotated.ddpm import DDPMConfig, GaussianDiffusion, Unet, linear_beta_schedule, train_ddpm
from annotated.utils import seed_everything


# the chapter's embedded configuration (notebooks/01_ddpm.ipynb, section 6), copied: the chapter defines it in a cell
CHAPTER_CONFIG = DDPMConfig(image_size=8, dim=32, dim_mults=(1, 2), batch_size=64, steps=1000, learning_rate=2e-3,
                            timesteps=300, ema_decay=0.995, loss_type="l2", beta_start=1e-4 * 1000 / 300,
                            beta_end=0.02 * 1000 / 300, lr_schedule="warmup_cosine")
N_TRAIN = 1500  # the chapter's split: 1,500 training digits, the other 297 held out

FULL = dict(training_seeds=[0, 1, 2], sampling_seeds=[1, 2, 3], n_samples=256, ddim_steps=[5, 10, 20, 50, 100],
            floor_splits=50, untrained_ddim_steps=50, config_changes={})
CI = dict(training_seeds=[0, 1], sampling_seeds=[1, 2], n_samples=48, ddim_steps=[2, 5], floor_splits=5,
          untrained_ddim_steps=5, config_changes=dict(steps=3, batch_size=16, timesteps=20))


def embedded_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits as (N, 1, 8, 8) images in [-1, 1], and their labels (as in the chapter)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)
    return rearrange(images, "n h w -> n 1 h w") / 8.0 - 1.0, torch.tensor(digits.target)


def chapter_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training images and labels, held-out images and labels: the chapter's fixed permutation (seed 0)."""
    images, labels = embedded_digits()
    split = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    train, held_out = split[:N_TRAIN], split[N_TRAIN:]
    return images[train], labels[train], images[held_out], labels[held_out]


def train_judge(train_images: torch.Tensor, train_labels: torch.Tensor, seed: int = 0) -> nn.Module:
    """The chapter's judge: an MLP (64 -> 128 -> 10), full-batch Adam for 300 steps on the training digits."""
    seed_everything(seed)
    judge = nn.Sequential(nn.Flatten(), nn.Linear(train_images[0].numel(), 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(judge.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(300):
        loss = F.cross_entropy(judge(train_images), train_labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return judge.eval()


@torch.no_grad()
def judge_logits(judge: nn.Module, images: torch.Tensor) -> np.ndarray:
    """The judge's 10 logits of ``images`` (clamped to [-1, 1], as the chapter's judge sees samples), float64."""
    return judge(images.clamp(-1, 1)).double().numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussian fits of feature sets ``a`` (N, D) and ``b`` (M, D):
    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``. The trace of the matrix square root is computed as the
    sum of square roots of the eigenvalues of the symmetric ``S_a^(1/2) S_b S_a^(1/2)``."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected two (N, D) feature sets with the same D, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) < 2:
        raise ValueError(f"expected at least 2 rows in each set, got {len(a)} and {len(b)}")
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a).clip(min=0)
    distance = ((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(cross).sum()
    return float(max(distance, 0.0))


def samplers(ddim_steps: list[int], timesteps: int) -> dict[str, int]:
    """Sampler name -> network calls per image."""
    return {**{f"DDIM {k}": k for k in ddim_steps}, f"DDPM {timesteps}": timesteps}


def summarise(results: dict) -> dict:
    """Per sampler: mean, standard deviation, min and max of the Fréchet distance over all (training seed, sampling
    seed) runs, the per-training-seed means, and the paired gap to DDPM (per training seed, averaged over sampling
    seeds; its mean and standard deviation over training seeds); the floor's statistics; the finding."""
    runs, floor = results["runs"], np.array(results["floor"]["values"])
    ddpm = f"DDPM {results['config']['timesteps']}"
    summary = {}
    names = list(samplers(results["sizes"]["ddim_steps"], results["config"]["timesteps"])) + [
        f"untrained net, DDIM {results['sizes']['untrained_ddim_steps']}", "pure noise"]
    for name in names:
        values = [r["frechet"] for r in runs.values() if r["sampler"] == name]
        if not values:
            continue
        per_seed = {}
        for r in runs.values():
            if r["sampler"] == name:
                per_seed.setdefault(str(r["training_seed"]), []).append(r["frechet"])
        entry = dict(network_calls=next(r["network_calls"] for r in runs.values() if r["sampler"] == name),
                     mean=float(np.mean(values)), std=float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                     min=float(np.min(values)), max=float(np.max(values)), runs=len(values),
                     seconds_mean=float(np.mean([r["seconds"] for r in runs.values() if r["sampler"] == name])),
                     per_training_seed={seed: float(np.mean(v)) for seed, v in per_seed.items()})
        if name.startswith("DDIM") or name == ddpm:
            # paired gaps: the same training seed and sampling seed (the same starting noise), DDIM minus DDPM
            paired = [r["frechet"] - runs[f"{r['training_seed']}|{ddpm}|{r['sampling_seed']}"]["frechet"]
                      for r in runs.values() if r["sampler"] == name
                      and f"{r['training_seed']}|{ddpm}|{r['sampling_seed']}" in runs]
            gaps = []
            for seed in results["sizes"]["training_seeds"]:
                mine = [r["frechet"] for r in runs.values() if r["sampler"] == name and r["training_seed"] == seed]
                theirs = [r["frechet"] for r in runs.values() if r["sampler"] == ddpm and r["training_seed"] == seed]
                if mine and theirs:
                    gaps.append(float(np.mean(mine) - np.mean(theirs)))
            entry["gap_to_ddpm_per_training_seed"] = gaps
            entry["gap_to_ddpm_mean"] = float(np.mean(paired)) if paired else None
            entry["gap_to_ddpm_std"] = float(np.std(paired, ddof=1)) if len(paired) > 1 else None
            entry["gap_to_ddpm_positive_runs"] = int(sum(g > 0 for g in paired))
            entry["gap_to_ddpm_runs"] = len(paired)
        summary[name] = entry
    floor_stats = dict(mean=float(floor.mean()), std=float(floor.std(ddof=1)), min=float(floor.min()),
                       max=float(floor.max()), q95=float(np.quantile(floor, 0.95)))
    finding = {}
    if ddpm in summary and all(f"DDIM {k}" in summary for k in results["sizes"]["ddim_steps"]):
        # "within the floor of DDPM": the mean paired gap to DDPM is smaller than the real-vs-real floor's standard
        # deviation (the size of the differences between two sets of real digits of this size); "behind DDPM on
        # every training seed": the gap of each training seed's mean is positive
        steps = results["sizes"]["ddim_steps"]
        within = [k for k in steps if summary[f"DDIM {k}"]["gap_to_ddpm_mean"] < floor_stats["std"]]
        behind = [k for k in steps if min(summary[f"DDIM {k}"]["gap_to_ddpm_per_training_seed"]) > 0]
        order = [f"DDIM {k}" for k in sorted(steps)] + [ddpm]
        monotone = all(all(summary[a]["per_training_seed"][str(t)] > summary[b]["per_training_seed"][str(t)]
                           for a, b in zip(order, order[1:])) for t in results["sizes"]["training_seeds"])
        finding = dict(
            rule_within_floor_of_ddpm="mean paired gap FD(DDIM k) - FD(DDPM) < the floor's standard deviation",
            ddim_steps_within_floor_of_ddpm=within,
            fewest_ddim_steps_within_floor_of_ddpm=min(within) if within else None,
            ddim_steps_behind_ddpm_on_every_training_seed=behind,
            distance_falls_with_every_added_call_on_every_training_seed=monotone,
            ddpm_mean_within_floor_range=floor_stats["min"] <= summary[ddpm]["mean"] <= floor_stats["max"],
        )
    return dict(samplers=summary, floor=floor_stats, finding=finding)


def plot(results: dict):
    """Fréchet distance against network calls per image (log-x, log-y): mean ± std over all runs, per-training-seed
    means, the real-vs-real floor as a band, pure noise and the untrained network as lines."""
    import matplotlib.pyplot as plt

    summary, floor = results["summary"]["samplers"], results["summary"]["floor"]
    figure, axis = plt.subplots(figsize=(9.5, 4.2))
    ddim = sorted((s for n, s in summary.items() if n.startswith("DDIM")), key=lambda s: s["network_calls"])
    calls = [s["network_calls"] for s in ddim]
    axis.errorbar(calls, [s["mean"] for s in ddim], yerr=[s["std"] for s in ddim], marker="o", capsize=3,
                  label="DDIM from the EMA (mean ± std over runs)")
    for seed in results["sizes"]["training_seeds"]:
        axis.plot(calls, [s["per_training_seed"].get(str(seed), np.nan) for s in ddim], color="C0", alpha=0.3,
                  linewidth=1, label="per training seed" if seed == results["sizes"]["training_seeds"][0] else None)
    ddpm = summary.get(f"DDPM {results['config']['timesteps']}")
    if ddpm:
        axis.errorbar([ddpm["network_calls"]], [ddpm["mean"]], yerr=[ddpm["std"]], marker="s", color="C3", capsize=3,
                      linestyle="none", label=f"DDPM, all {ddpm['network_calls']} steps")
        axis.scatter([ddpm["network_calls"]] * len(ddpm["per_training_seed"]), list(ddpm["per_training_seed"].values()),
                     color="C3", alpha=0.3, s=12)
    axis.axhspan(floor["min"], floor["max"], color="grey", alpha=0.15,
                 label="real vs real (training subsets vs held out): min to max")
    axis.axhspan(floor["mean"] - floor["std"], floor["mean"] + floor["std"], color="grey", alpha=0.3,
                 label="real vs real: mean ± std")
    axis.axhline(floor["mean"], color="grey", linewidth=1)
    for name, style in [("pure noise", ":"), (f"untrained net, DDIM {results['sizes']['untrained_ddim_steps']}", "--")]:
        if name in summary:
            axis.axhline(summary[name]["mean"], color="black", linestyle=style, linewidth=1, label=name)
    axis.set(xscale="log", yscale="log", xlabel="network calls per image",
             ylabel="Fréchet distance to held-out digits\n(judge logits)",
             title=f"{results['sizes']['n_samples']} samples per set, {len(results['sizes']['training_seeds'])} training"
                   f" x {len(results['sizes']['sampling_seeds'])} sampling seeds")
    ticks = sorted({s["network_calls"] for s in ddim} | ({ddpm["network_calls"]} if ddpm else set()))
    axis.set_xticks(ticks, [str(t) for t in ticks])
    axis.xaxis.set_minor_locator(plt.NullLocator())
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    return figure


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ci", action="store_true", help="tiny sizes, only to show the script runs")
    parser.add_argument("--work", type=Path, default=Path("checkpoints/ddpm_sampler_quality"))
    parser.add_argument("--out", type=Path, default=Path("results/ddpm"))
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    size = CI if args.ci else FULL
    progress = not args.no_progress
    torch.set_num_threads(1)
    config = dataclasses.replace(CHAPTER_CONFIG, **size["config_changes"])
    suffix = "_ci" if args.ci else ""
    json_path, png_path = args.out / f"sampler_quality{suffix}.json", args.out / f"sampler_quality{suffix}.png"
    sizes = {k: v for k, v in size.items() if k != "config_changes"}
    results = dict(command="python -m scripts.ddpm_sampler_quality" + (" --ci" if args.ci else ""),
                   config=dataclasses.asdict(config), sizes=sizes, runs={}, training={}, seconds=0.0)
    if json_path.is_file():  # resume: keep finished entries if the run is the same experiment
        stored = json.loads(json_path.read_text())
        same = lambda a: {k: v for k, v in a.items() if not k.endswith("_seeds")}  # noqa: E731
        if same(stored.get("sizes", {})) == same(sizes) and stored.get("config") == json.loads(json.dumps(results["config"])):
            results.update(runs=stored["runs"], training=stored["training"], seconds=stored.get("seconds", 0.0))
    started = time.perf_counter()
    seconds_before = results["seconds"]

    def save() -> None:
        results["seconds"] = round(seconds_before + time.perf_counter() - started, 1)
        args.out.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=1))

    train_images, train_labels, held_out_images, held_out_labels = chapter_split()
    judge = train_judge(train_images, train_labels, seed=0)
    held_out_features = judge_logits(judge, held_out_images)
    train_features = judge_logits(judge, train_images)
    with torch.no_grad():
        accuracy = (judge(held_out_images).argmax(-1) == held_out_labels).float().mean().item()
    results["judge"] = dict(recipe="chapter section 8: MLP 64-128-10, full-batch Adam lr 3e-3, wd 1e-4, 300 steps, seed 0",
                            features="logits (10-d)", held_out_accuracy=accuracy)
    n = size["n_samples"]
    rng = np.random.default_rng(0)
    floor = [frechet_distance(train_features[rng.choice(len(train_features), n, replace=False)], held_out_features)
             for _ in range(size["floor_splits"])]
    results["floor"] = dict(description=f"FD(random {n} training digits, the {len(held_out_images)} held-out digits)",
                            values=floor)
    results["reference"] = dict(held_out=len(held_out_images), training=len(train_images))

    diffusion = GaussianDiffusion(linear_beta_schedule(config.timesteps, config.beta_start, config.beta_end))
    calls = samplers(size["ddim_steps"], config.timesteps)
    untrained_name = f"untrained net, DDIM {size['untrained_ddim_steps']}"
    todo = [(t, name, s) for t in size["training_seeds"] for name in [*calls, untrained_name]
            for s in size["sampling_seeds"]] + [(None, "pure noise", s) for s in size["sampling_seeds"]]
    key = lambda t, name, s: f"{t}|{name}|{s}"  # noqa: E731
    bar = tqdm(todo, desc="sample sets", disable=not progress)
    networks: dict[int, tuple[nn.Module, nn.Module]] = {}
    for training_seed, name, sampling_seed in bar:
        if key(training_seed, name, sampling_seed) in results["runs"]:
            continue
        bar.set_postfix_str(f"training seed {training_seed}, {name}, sampling seed {sampling_seed}")
        if training_seed is not None and training_seed not in networks:
            begun = time.perf_counter()
            trained = train_ddpm(config, train_images, checkpoint_dir=args.work / f"seed{training_seed}",
                                 checkpoint_every=max(1, config.steps // 4), seed=training_seed, progress=progress)
            resumed = trained.history.resumed_from or 0
            if resumed < config.steps or str(training_seed) not in results["training"]:  # else: read, not trained
                before = results["training"].get(str(training_seed), {}).get("seconds", 0.0) if resumed else 0.0
                results["training"][str(training_seed)] = dict(
                    seconds=round(before + time.perf_counter() - begun, 1), resumed_from=resumed,
                    loss_last_100_steps=float(np.mean(trained.history.losses[-100:])))
            seed_everything(training_seed)  # the untrained network: train_ddpm's initial weights for this seed
            untrained = Unet(dim=config.dim, dim_mults=config.dim_mults, channels=config.channels).eval()
            networks = {training_seed: (trained.ema.eval(), untrained)}
        generator = torch.Generator().manual_seed(sampling_seed)
        begun = time.perf_counter()
        with torch.no_grad():
            if name == "pure noise":
                images, network_calls = torch.randn(n, config.channels, config.image_size, config.image_size,
                                                    generator=generator), 0
            elif name == untrained_name:
                network_calls = size["untrained_ddim_steps"]
                images = diffusion.ddim_sample(networks[training_seed][1], config.image_size, n, config.channels,
                                               num_steps=network_calls, generator=generator)
            elif name.startswith("DDIM"):
                network_calls = calls[name]
                images = diffusion.ddim_sample(networks[training_seed][0], config.image_size, n, config.channels,
                                               num_steps=network_calls, generator=generator)
            else:
                network_calls = config.timesteps
                images = diffusion.sample(networks[training_seed][0], config.image_size, n, config.channels,
                                          generator=generator)
        seconds = time.perf_counter() - begun
        results["runs"][key(training_seed, name, sampling_seed)] = dict(
            training_seed=training_seed, sampler=name, sampling_seed=sampling_seed, network_calls=network_calls,
            n_samples=n, seconds=round(seconds, 2),
            frechet=frechet_distance(judge_logits(judge, images), held_out_features))
        save()
    wanted = {key(t, name, s) for t, name, s in todo}
    results["runs"] = {k: r for k, r in results["runs"].items() if k in wanted}  # fewer seeds asked: only those
    results["summary"] = summarise(results)
    results["machine"] = f"{platform.machine()} CPU, {torch.get_num_threads()} thread ({platform.platform()})"
    results["torch"] = torch.__version__
    save()
    figure = plot(results)
    figure.savefig(png_path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return results


if __name__ == "__main__":
    main()
