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

Measured on 2026-11-25 with ``python benchmarks/rl.py`` (seeds 0 1 2, evaluation every 1024 steps, one thread) on
the project's shared 2-core CPU machine under heavy load from other jobs (load average about 13), so both columns'
seconds are inflated; the ratios are the more meaningful part:

| seed | annotated steps | annotated s | annotated steps/s | SB3 steps | SB3 s | SB3 steps/s | time ratio SB3/annotated |
|---|---|---|---|---|---|---|---|
| 0 | 24576 | 18.9 | 1297 | 19456 | 35.4 | 550 | 1.87 |
| 1 | 14336 | 10.3 | 1395 | 15360 | 24.6 | 624 | 2.39 |
| 2 | 20480 | 19.4 | 1058 | 17408 | 32.6 | 534 | 1.68 |

Both solved 3/3 seeds. The annotated PPO needs a similar number of environment steps (median 20480 against 17408)
and about half the training time (median 18.9 s against 32.6 s): 8 vectorised environments and one large batch
per update make each step cheaper than SB3's single environment and 64-sample minibatches.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

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


if __name__ == "__main__":
    main()
