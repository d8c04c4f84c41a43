"""DQN's and Double DQN's value estimates against the returns they obtain, over seeds (the PPO chapter's Double DQN
measurement).

One seeded command trains the chapter's CartPole DQN (section "DQN", cell 20: ``DQNConfig(hidden_sizes=(128, 128),
gradient_steps=64, eval_every=2_500)``, here with ``target_return=None`` so that every run goes to its full 50,000
environment steps) with both targets, ``double_q=False`` (DQN) and ``double_q=True`` (Double DQN), on seeds 0 to 9.
At every evaluation (every 2,500 steps) it measures, as the chapter does, with ``annotated.rl.deep.start_values``:
the estimate ``max_a Q(s_0, a)`` and the discounted return the greedy policy then obtains from the same start state
(played past the 500-step time limit, up to 1,000 steps), each a mean over the same 10 start states. The bias is
estimate minus obtained; the first half of training is the evaluations at or before half the steps, the second half
the ones after.

    python -m scripts.double_dqn_bias                                     # 2 targets x seeds 0-9, one thread
    python -m scripts.double_dqn_bias --steps 600 --seeds 0 --out /tmp/x  # seconds

At another ``--steps`` than 50,000 the run keeps the chapter's proportions: 20 evaluations (``eval_every`` is a
twentieth of the steps) and ``learning_starts`` a fiftieth of the steps (1,000 at 50,000); exploration already
scales with the steps.

Resumable: every run writes ``<out>/runs/<variant>_seed<k>.json``; a rerun skips the runs whose file exists and
aggregates all requested runs into ``<out>/bias.json`` and ``<out>/bias.png``. Everything that depends on the
machine (platform, CPU, threads, seconds per run, date) is kept under the ``machine`` key of the JSON files.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np


VARIANTS = {"dqn": False, "double_dqn": True}  # file-name key -> double_q
LABELS = {"dqn": "DQN", "double_dqn": "Double DQN"}
STEPS, SEEDS = 50_000, list(range(10))
EVALUATIONS = 20  # the chapter's eval_every=2,500 over 50,000 steps
SOLVED = 475.0  # CartPole-v1's mark, the chapter's target_return
START_STATES = 10  # start_values' n_episodes, as in the chapter
BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED = 10_000, 0
DEFAULT_OUT = Path("results/double_dqn")


def config_for(variant: str, seed: int, steps: int = STEPS):
    """The chapter's DQN configuration for ``variant`` and ``seed``, run for ``steps`` environment steps."""
    from annotated.rl.deep import DQNConfig

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {tuple(VARIANTS)}, got {variant!r}")
    if seed < 0:
        raise ValueError(f"seeds must be >= 0, got {seed}")
    chapter = DQNConfig(hidden_sizes=(128, 128), gradient_steps=64, eval_every=2_500, target_return=SOLVED, seed=seed)
    config = replace(chapter, target_return=None, double_q=VARIANTS[variant])  # exactly the chapter's bias_config
    if steps == STEPS:
        return config
    minimum = 2 * config.train_frequency
    if steps < minimum or steps % EVALUATIONS:
        raise ValueError(f"steps must be a multiple of {EVALUATIONS} (one evaluation every twentieth of the run) and "
                         f"at least {minimum} (two bursts of updates, one every {config.train_frequency} steps), "
                         f"got {steps}")
    return replace(config, total_timesteps=steps, eval_every=steps // EVALUATIONS,
                   learning_starts=max(1, round(config.learning_starts * steps / STEPS)))


def machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return dict(platform=platform.platform(), cpu=cpu, cpu_count=os.cpu_count(), torch=torch.__version__,
                torch_threads=torch.get_num_threads(), torch_capability=torch.backends.cpu.get_cpu_capability())


def train_run(variant: str, seed: int, steps: int) -> dict:
    """Train one (variant, seed) in this process and measure ``start_values`` at every evaluation."""
    import torch

    from annotated.rl.deep import start_values, train_dqn

    torch.set_num_threads(1)
    config = config_for(variant, seed, steps)
    tail = config.gamma ** 500 / (1 - config.gamma)  # the most the return after the 500-step time limit can add
    points = []

    def measure(step: int, network) -> None:
        values = start_values(network, "CartPole-v1", config.gamma, n_episodes=START_STATES)
        if not np.all(values.returns - values.limited_returns <= tail):
            raise AssertionError(f"{variant} seed {seed}, step {step}: the return past the time limit exceeds {tail}")
        points.append(dict(step=step, estimate=float(values.estimates.mean()), obtained=float(values.returns.mean()),
                           obtained_within_time_limit=float(values.limited_returns.mean()),
                           largest_state_estimate=float(values.estimates.max()),
                           mean_length=float(values.lengths.mean())))

    started = time.perf_counter()
    _, history = train_dqn("CartPole-v1", config, on_eval=measure)
    seconds = time.perf_counter() - started
    return dict(
        variant=variant, label=LABELS[variant], seed=seed, steps=steps, config=asdict(config),
        start_states=START_STATES, eval_steps=[p["step"] for p in points],
        **{key: [p[key] for p in points] for key in ("estimate", "obtained", "obtained_within_time_limit",
                                                      "largest_state_estimate", "mean_length")},
        greedy_eval_returns=[float(v) for v in history.eval_returns],
        machine=dict(machine(), seconds=round(seconds, 1),
                     date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")))


def run_summary(run: dict) -> dict:
    """One run's numbers: first- and second-half mean bias (and estimate, obtained), largest and final estimate, and
    from the training's own greedy evaluations (undiscounted, 10 episodes within the time limit) the first step with
    a mean of at least 475 and the lowest mean from then on; whether the estimate rose at every evaluation, and the
    largest change of the return obtained between two consecutive second-half evaluations."""
    steps, estimate, obtained = (np.array(run[k]) for k in ("eval_steps", "estimate", "obtained"))
    bias, late = estimate - obtained, steps > run["steps"] // 2
    if late.all() or not late.any():
        raise ValueError(f"{run['variant']} seed {run['seed']}: needs evaluations in both halves, got steps {steps}")
    largest = int(np.argmax(estimate))
    greedy = np.array(run["greedy_eval_returns"])
    solved = np.flatnonzero(greedy >= SOLVED)
    return dict(first_half_bias=float(bias[~late].mean()), second_half_bias=float(bias[late].mean()),
                first_half_estimate=float(estimate[~late].mean()), second_half_estimate=float(estimate[late].mean()),
                first_half_obtained=float(obtained[~late].mean()), second_half_obtained=float(obtained[late].mean()),
                largest_bias=float(bias.max()), max_estimate=float(estimate[largest]),
                max_estimate_step=int(steps[largest]), final_estimate=float(estimate[-1]),
                final_obtained=float(obtained[-1]),
                estimate_rises_every_evaluation=bool(np.all(np.diff(estimate) > 0)),
                largest_obtained_move_second_half=float(np.abs(np.diff(obtained[late])).max(initial=0.0)),
                greedy_first_solved_step=int(steps[solved[0]]) if len(solved) else None,
                greedy_lowest_after_solved=float(greedy[solved[0]:].min()) if len(solved) else None)


def bootstrap_interval(values: list[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> list:
    """95% percentile bootstrap interval of the mean of ``values`` (resampling the seeds), seeded."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]


def aggregate(runs: list[dict], command: str) -> dict:
    """Per run, per variant (mean and sample sd over seeds) and paired (same seed) DQN minus Double DQN."""
    if not runs:
        raise ValueError("no runs to aggregate")
    steps = {r["steps"] for r in runs}
    grids = {tuple(r["eval_steps"]) for r in runs}
    if len(steps) != 1 or len(grids) != 1:
        raise ValueError(f"runs of different lengths or evaluation steps cannot be aggregated: {sorted(steps)}")
    gamma = runs[0]["config"]["gamma"]
    bound = 1 / (1 - gamma)
    per_run = {v: {str(r["seed"]): run_summary(r) for r in sorted(runs, key=lambda r: r["seed"]) if r["variant"] == v}
               for v in VARIANTS}
    per_run = {v: rows for v, rows in per_run.items() if rows}
    variants = {}
    for variant, rows in per_run.items():
        mine = sorted((r for r in runs if r["variant"] == variant), key=lambda r: r["seed"])
        stats = {}
        for key in next(iter(rows.values())):
            if key in ("max_estimate_step", "greedy_first_solved_step", "greedy_lowest_after_solved",
                       "estimate_rises_every_evaluation"):
                continue
            values = [row[key] for row in rows.values()]
            stats[key] = dict(mean=float(np.mean(values)),
                              sd=float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)
        estimate = np.array([r["estimate"] for r in mine])
        bias = estimate - np.array([r["obtained"] for r in mine])
        variants[variant] = dict(
            label=LABELS[variant], seeds=[r["seed"] for r in mine], **stats,
            first_half_bias_negative_runs=sum(row["first_half_bias"] < 0 for row in rows.values()),
            second_half_bias_positive_runs=sum(row["second_half_bias"] > 0 for row in rows.values()),
            greedy_solved_runs=sum(row["greedy_first_solved_step"] is not None for row in rows.values()),
            greedy_collapsed_after_solved_runs=sum(row["greedy_lowest_after_solved"] is not None and
                                                   row["greedy_lowest_after_solved"] < SOLVED / 2
                                                   for row in rows.values()),
            mean_estimate_curve=estimate.mean(axis=0).tolist(), mean_bias_curve=bias.mean(axis=0).tolist())
    paired = {}
    if len(per_run) == 2:
        seeds = sorted(set(per_run["dqn"]) & set(per_run["double_dqn"]), key=int)
        for key in ("second_half_bias", "second_half_estimate", "second_half_obtained", "first_half_bias"):
            differences = [per_run["dqn"][s][key] - per_run["double_dqn"][s][key] for s in seeds]
            if not differences:
                continue
            interval = bootstrap_interval(differences)
            paired[key] = dict(
                seeds=[int(s) for s in seeds], per_seed=differences, mean=float(np.mean(differences)),
                sd=float(np.std(differences, ddof=1)) if len(differences) > 1 else 0.0, ci95=interval,
                dqn_higher_seeds=sum(d > 0 for d in differences),
                double_dqn_higher_seeds=sum(d < 0 for d in differences),
                interval_includes_zero=bool(interval[0] <= 0 <= interval[1]))
    largest = max(((row["max_estimate"], v, int(s), row["max_estimate_step"]) for v, rows in per_run.items()
                   for s, row in rows.items()))
    every_run = [row for rows in per_run.values() for row in rows.values()]
    moves = [row["largest_obtained_move_second_half"] for row in every_run]
    state_largest = max(max(r["largest_state_estimate"]) for r in runs)
    return dict(
        command=command, steps=runs[0]["steps"], gamma=gamma, value_bound=bound, start_states=runs[0]["start_states"],
        eval_steps=runs[0]["eval_steps"], half=runs[0]["steps"] // 2,
        definitions=dict(
            estimate="max_a Q(s_0, a), mean over the start states, at one evaluation",
            obtained="discounted return of the greedy policy from the same start states (played past the time limit "
                     "up to 1,000 steps), mean over the start states",
            bias="estimate minus obtained",
            first_half="mean over the evaluations at steps <= half",
            second_half="mean over the evaluations at steps > half",
            sd="sample standard deviation over seeds (ddof=1)",
            paired="DQN minus Double DQN on the same seed; ci95: percentile bootstrap of the mean over seeds, "
                   f"{BOOTSTRAP_RESAMPLES} resamples, numpy default_rng({BOOTSTRAP_SEED})",
            value_bound="1/(1-gamma): the discounted value of balancing for ever",
            largest_obtained_move_second_half="the largest absolute change of obtained between two consecutive "
                                              "evaluations of the second half, in one run",
            greedy_collapsed_after_solved=f"the training's greedy evaluation reached a mean of {SOLVED:g} and a later "
                                          f"one fell below {SOLVED / 2:g}"),
        bootstrap=dict(resamples=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED),
        runs=per_run, variants=variants, paired=paired,
        over_runs=dict(
            runs=len(every_run),
            estimate_rises_every_evaluation_runs=sum(row["estimate_rises_every_evaluation"] for row in every_run),
            largest_obtained_move_second_half_min=min(moves), largest_obtained_move_second_half_max=max(moves)),
        max_estimate=dict(value=largest[0], variant=largest[1], seed=largest[2], step=largest[3], bound=bound,
                          runs_above_bound=sum(row["max_estimate"] > bound for rows in per_run.values()
                                               for row in rows.values()),
                          runs=sum(len(rows) for rows in per_run.values()),
                          largest_single_start_state=state_largest),
        machine=dict(
            {k: v for k, v in runs[0]["machine"].items() if k not in ("seconds", "date")},
            seconds_per_run={f"{r['variant']}_seed{r['seed']}": r["machine"]["seconds"] for r in runs},
            seconds_total=round(sum(r["machine"]["seconds"] for r in runs), 1),
            dates=[min(r["machine"]["date"] for r in runs), max(r["machine"]["date"] for r in runs)]))


def plot(results: dict, runs: list[dict]):
    """Estimates with the 1/(1-gamma) line, and the bias: each seed faint, the mean over seeds bold."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True)
    steps = np.array(results["eval_steps"])
    for variant, color in [("dqn", "tab:blue"), ("double_dqn", "tab:red")]:
        mine = [r for r in runs if r["variant"] == variant]
        if not mine:
            continue
        estimate = np.array([r["estimate"] for r in mine])
        bias = estimate - np.array([r["obtained"] for r in mine])
        for values, axis in [(estimate, axes[0]), (bias, axes[1])]:
            for row in values:
                axis.plot(steps, row, color=color, alpha=0.2, linewidth=1)
            axis.plot(steps, values.mean(axis=0), color=color, linewidth=2,
                      label=f"{LABELS[variant]}, mean of {len(mine)} seeds (faint: each seed)")
    axes[0].axhline(results["value_bound"], color="grey", linestyle="--", linewidth=0.8)
    axes[0].set(title=r"estimate $\max_a Q(s_0, a)$ (dashed: $1/(1-\gamma)$)", xlabel="environment steps",
                ylabel=f"mean over {results['start_states']} start states")
    axes[1].axhline(0, color="grey", linewidth=0.8)
    axes[1].set(title="bias: estimate minus discounted return obtained", xlabel="environment steps")
    axes[1].legend(fontsize=8)
    for axis in axes:
        axis.grid(alpha=0.3)
    figure.suptitle(results["command"], fontsize=9)
    figure.tight_layout()
    return figure


def load_runs(runs_dir: Path, variants: list[str], seeds: list[int], steps: int) -> list[dict]:
    runs = []
    for seed in seeds:
        for variant in variants:
            run = json.loads((runs_dir / f"{variant}_seed{seed}.json").read_text())
            if run["steps"] != steps or run["variant"] != variant or run["seed"] != seed:
                raise ValueError(f"{runs_dir / f'{variant}_seed{seed}.json'} holds {run['variant']} seed {run['seed']} "
                                 f"at {run['steps']} steps, not {variant} seed {seed} at {steps}: use another --out")
            runs.append(run)
    return runs


def command_for(steps: int, seeds: list[int], out: Path) -> str:
    command = "python -m scripts.double_dqn_bias"
    if steps != STEPS:
        command += f" --steps {steps}"
    if seeds != SEEDS:
        command += f" --seeds {' '.join(map(str, seeds))}"
    return command + (f" --out {out}" if out != DEFAULT_OUT else "")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        raise ValueError(f"each seed once, got {args.seeds}")
    for seed in args.seeds:
        config_for("dqn", seed, args.steps)  # refuses bad steps and seeds before anything is trained
    if args.no_progress:
        os.environ["TQDM_DISABLE"] = "1"
    from tqdm.auto import tqdm

    runs_dir = args.out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    todo = [(variant, seed) for seed in args.seeds for variant in VARIANTS]
    trained = []
    bar = tqdm(todo, desc="runs", disable=args.no_progress)
    for variant, seed in bar:
        path = runs_dir / f"{variant}_seed{seed}.json"
        if path.is_file():
            continue
        bar.set_postfix_str(f"{LABELS[variant]}, seed {seed}")
        record = train_run(variant, seed, args.steps)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(record, indent=1))
        os.replace(partial, path)
        trained.append(path.name)
    runs = load_runs(runs_dir, list(VARIANTS), args.seeds, args.steps)
    results = aggregate(runs, command_for(args.steps, args.seeds, args.out))
    (args.out / "bias.json").write_text(json.dumps(results, indent=1) + "\n")
    figure = plot(results, runs)
    figure.savefig(args.out / "bias.png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return dict(results, trained_now=trained)


if __name__ == "__main__":
    main()
