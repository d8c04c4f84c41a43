"""The PPO chapter at full scale: LunarLander-v3 with the Deep RL Course's settings (``lunar_lander_config()``).

    python -m scripts.full_scale.ppo [--out DIR] [--smoke]

Trains ``annotated.rl.deep.train_ppo`` for the course's 1,000,000 environment steps (tqdm progress; safetensors
checkpoints of agent and optimiser every 5 updates in ``--out``, resumed by a second call), then evaluates the
greedy policy on 10 episodes and reports mean, standard deviation and the course's score (mean - std, pass mark
200). PPO's networks are tiny and its time goes into the Box2D simulator, so it runs on the CPU in one process:
under ``accelerate launch`` only the main process trains, the others return at once. ``--smoke`` runs one update of
the same configuration (16 environments x 64 steps instead of 1,024, to fit CI's CPU budget) and one evaluation.
"""

from __future__ import annotations

import dataclasses
import os

from annotated.rl.deep import LUNAR_LANDER_ID, LUNAR_LANDER_PASS_MARK, evaluate_policy, lunar_lander_config, train_ppo
from scripts.full_scale import common


CHAPTER = "ppo"


def main(argv: list[str] | None = None) -> dict | None:
    arguments = common.parser(CHAPTER, __doc__.splitlines()[0]).parse_args(argv)
    if int(os.environ.get("RANK", "0")) != 0:  # accelerate launch with several processes: one simulation is enough
        return None
    stopwatch = common.Stopwatch()
    config, checkpoint_every, eval_episodes = lunar_lander_config(), 5, 10
    if arguments.smoke:
        config = dataclasses.replace(config, num_steps=64, num_minibatches=16,
                                     total_timesteps=config.num_envs * 64, eval_every=config.num_envs * 64)
        checkpoint_every, eval_episodes = 1, 2
    agent, history = train_ppo(LUNAR_LANDER_ID, config, checkpoint_dir=arguments.out / "checkpoints",
                               checkpoint_every=checkpoint_every)
    returns = evaluate_policy(agent.act, LUNAR_LANDER_ID, n_episodes=eval_episodes)
    metrics = {"eval_return_mean": float(returns.mean()), "eval_return_std": float(returns.std()),
               "course_score_mean_minus_std": float(returns.mean() - returns.std())}
    return common.write_results(
        CHAPTER, arguments.out, metrics=metrics, steps=history.env_steps, wall_seconds=stopwatch.seconds(),
        smoke=arguments.smoke,
        settings={**dataclasses.asdict(config), "env_id": LUNAR_LANDER_ID, "eval_episodes": eval_episodes,
                  "pass_mark": LUNAR_LANDER_PASS_MARK, "evaluations": list(zip(history.eval_steps, history.eval_returns)),
                  "source": "annotated.rl.deep.lunar_lander_config() (Deep RL Course, unit 1 hands-on)"})


if __name__ == "__main__":
    common.run(CHAPTER, main)
