"""Annotated PPO against stable-baselines3's PPO on CartPole-v1, side by side in one run, several seeds.

For each seed, both are trained until the first greedy evaluation (the same 10 seeded episodes, every
``--eval-every`` environment steps) has a mean return of at least 475, or ``--max-steps`` is reached. Reported:
environment steps to that point, training seconds (evaluation time excluded for both), and environment steps per
second. The annotated PPO uses its chapter defaults (RL Zoo's tuned CartPole settings, 8 vectorised environments);
stable-baselines3 uses its default hyperparameters (one environment, 2048 steps per update, 10 epochs, lr 3e-4),
as the issue asks. Both run on ``--threads`` torch threads (1 by default: faster for these tiny networks).

    python benchmarks/rl.py                       # seeds 0 1 2, evaluation every 1024 steps
    python benchmarks/rl.py --seeds 0 1 2 3 4 --eval-every 512

Timings are never asserted; they depend on the machine (say which one when quoting them).

The committed run, shown in chapter 07, is ``results/benchmarks/rl_cartpole.json`` (``--out`` writes it, with the
command, the date, the machine and its load average at the end of the run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from annotated.rl.deep import PPOConfig, evaluate_policy, train_ppo


ENV_ID = "CartPole-v1"
TARGET = 475.0


@dataclass
class Result:
    solved_at_step: int | None
    train_seconds: float
    env_steps: int

    def cells(self) -> list[str]:
        steps = f"{self.solved_at_step}" if self.solved_at_step is not None else f">{self.env_steps}"
        return [steps, f"{self.train_seconds:.1f}", f"{self.env_steps / max(self.train_seconds, 1e-9):.0f}"]


def run_annotated(seed: int, eval_every: int, max_steps: int, threads: int) -> Result:
    config = PPOConfig(total_timesteps=max_steps, eval_every=eval_every, target_return=TARGET, seed=seed,
                       num_threads=threads)
    _, history = train_ppo(ENV_ID, config)
    seconds = history.solved_after_seconds if history.solved_at_step is not None else history.train_seconds
    return Result(history.solved_at_step, seconds, history.solved_at_step or history.env_steps)


def run_sb3(seed: int, eval_every: int, max_steps: int) -> Result:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    class EvalAndStop(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.eval_seconds = 0.0
            self.solved_at_step: int | None = None

        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every:
                return True
            start = time.perf_counter()
            act = lambda obs: torch.as_tensor(self.model.predict(obs.numpy(), deterministic=True)[0])  # noqa: E731
            mean = evaluate_policy(act, ENV_ID, n_episodes=10).mean()
            self.eval_seconds += time.perf_counter() - start
            if mean >= TARGET:
                self.solved_at_step = self.num_timesteps
                return False
            return True

    model = PPO("MlpPolicy", ENV_ID, seed=seed, device="cpu", verbose=0)
    callback = EvalAndStop()
    start = time.perf_counter()
    model.learn(total_timesteps=max_steps, callback=callback)
    seconds = time.perf_counter() - start - callback.eval_seconds
    return Result(callback.solved_at_step, seconds, callback.solved_at_step or model.num_timesteps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-every", type=int, default=1024)
    parser.add_argument("--max-steps", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None,
                        help="also write the results as JSON here (the chapter shows results/benchmarks/rl_cartpole.json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows, ours, theirs = [], [], []
    for seed in args.seeds:
        a = run_annotated(seed, args.eval_every, args.max_steps, args.threads)
        b = run_sb3(seed, args.eval_every, args.max_steps)
        ours.append(a)
        theirs.append(b)
        rows.append([str(seed), *a.cells(), *b.cells(), f"{b.train_seconds / a.train_seconds:.2f}"])
        print(f"seed {seed}: annotated {a.cells()}  sb3 {b.cells()}", flush=True)

    header = ["seed", "annotated steps", "annotated s", "annotated steps/s", "SB3 steps", "SB3 s", "SB3 steps/s",
              "time ratio SB3/annotated"]
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    solved_a = sum(r.solved_at_step is not None for r in ours)
    solved_b = sum(r.solved_at_step is not None for r in theirs)
    print(f"\nsolved (greedy 10-episode mean >= {TARGET:.0f}, evaluated every {args.eval_every} steps): "
          f"annotated {solved_a}/{len(ours)}, SB3 {solved_b}/{len(theirs)}")
    print(f"median training seconds: annotated {np.median([r.train_seconds for r in ours]):.1f}, "
          f"SB3 {np.median([r.train_seconds for r in theirs]):.1f}; "
          f"median env steps: annotated {np.median([r.env_steps for r in ours]):.0f}, "
          f"SB3 {np.median([r.env_steps for r in theirs]):.0f}")
    if args.out is not None:
        write_results(args.out, args, ours, theirs)


def write_results(path: Path, args: argparse.Namespace, ours: list[Result], theirs: list[Result]) -> None:
    """The run as JSON: the command, the machine and its load, and both libraries' result per seed."""
    record = {
        "command": "python benchmarks/rl.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, {platform.platform()}",
        "load_average_at_end": os.getloadavg()[0],
        "threads": args.threads,
        "eval_every": args.eval_every,
        "target": TARGET,
        "seeds": args.seeds,
        "annotated": [asdict(r) for r in ours],
        "sb3": [asdict(r) for r in theirs],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
