"""The Q-learning chapter at full scale: the course's FrozenLake (4x4, not slippery) and Taxi runs.

    python -m scripts.full_scale.q_learning [--out DIR] [--smoke]

Trains ``annotated.rl.tabular.train`` with ``FROZEN_LAKE_SETTINGS`` (10,000 episodes) and ``TAXI_SETTINGS`` (25,000
episodes), with a tqdm bar over the episodes, saves each Q-table as a safetensors file in ``--out`` (a second call
loads the tables it finds instead of training again: a table is the whole state of a run), evaluates each greedy
policy with the course's ``evaluate_agent`` and seeds, and compares Taxi with the exact optimum from value iteration.
The chapter already runs these settings; this command is the same run as one script. ``--smoke`` trains 200
episodes per environment and evaluates 5. Tabular Q-learning runs in one process on the CPU: under
``accelerate launch`` only the main process works.
"""

from __future__ import annotations

import dataclasses
import os

import torch
from safetensors.torch import load_file, save_file

from annotated.rl.tabular import (
    FROZEN_LAKE_SETTINGS,
    TAXI_SETTINGS,
    evaluate_agent,
    initialize_q_table,
    table_shape,
    train,
    value_iteration,
)
from scripts.full_scale import common


CHAPTER = "q_learning"


def main(argv: list[str] | None = None) -> dict | None:
    arguments = common.parser(CHAPTER, __doc__.splitlines()[0]).parse_args(argv)
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    stopwatch = common.Stopwatch()
    metrics: dict[str, float] = {}
    settings_record: dict[str, dict] = {}
    episodes = 0
    for name, settings in (("frozen_lake", FROZEN_LAKE_SETTINGS), ("taxi", TAXI_SETTINGS)):
        if arguments.smoke:
            settings = dataclasses.replace(settings, n_training_episodes=200, n_eval_episodes=5)
        env = settings.make_env()
        table_file = arguments.out / f"{name}_q_table.safetensors"
        if table_file.is_file():  # resume: this environment's run is finished
            table = load_file(str(table_file))["q_table"].numpy()
            if table.shape != table_shape(env):
                raise ValueError(f"{table_file} holds a table of shape {table.shape}, expected {table_shape(env)}")
        else:
            table = train(settings.n_training_episodes, settings.min_epsilon, settings.max_epsilon,
                          settings.decay_rate, env, settings.max_steps, initialize_q_table(*table_shape(env)),
                          settings.learning_rate, settings.gamma, seed=0, progress=True)
            arguments.out.mkdir(parents=True, exist_ok=True)
            save_file({"q_table": torch.from_numpy(table)}, str(table_file))
        episodes += settings.n_training_episodes
        mean, std = evaluate_agent(env, settings.max_steps, settings.n_eval_episodes, table, settings.eval_seed)
        metrics.update({f"{name}_mean_reward": mean, f"{name}_std_reward": std, f"{name}_score": mean - std})
        if name == "taxi":
            optimal_mean, optimal_std = evaluate_agent(env, settings.max_steps, settings.n_eval_episodes,
                                                       value_iteration(env, settings.gamma), settings.eval_seed)
            metrics.update({"taxi_optimal_mean_reward": optimal_mean, "taxi_optimal_score": optimal_mean - optimal_std})
        settings_record[name] = dataclasses.asdict(settings)
        env.close()
    return common.write_results(
        CHAPTER, arguments.out, metrics=metrics, steps=episodes, wall_seconds=stopwatch.seconds(),
        smoke=arguments.smoke,
        settings={**settings_record, "steps_are": "training episodes",
                  "source": "annotated.rl.tabular.FROZEN_LAKE_SETTINGS and TAXI_SETTINGS (Deep RL Course, unit 2)"})


if __name__ == "__main__":
    common.run(CHAPTER, main)
