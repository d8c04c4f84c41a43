"""The deep RL chapter's DQN at full scale: SpaceInvaders with the RL Baselines3 Zoo's settings (``atari_dqn_config()``).

    python -m scripts.full_scale.dqn_atari [--out DIR] [--smoke]

Trains ``annotated.rl.deep.train_dqn`` with the Nature network on ``make_atari_env(ATARI_ID)`` (no-op starts, frame
skip 4 with max-pooling, 84 x 84 grey, 4 stacked frames, clipped rewards, a lost life ends a training episode; sticky
actions off, as in the Zoo's SpaceInvadersNoFrameskip-v4) for 10,000,000 steps, with a tqdm bar and safetensors
checkpoints of the network and optimiser every 100,000 steps in ``--out`` (a second call resumes from the latest; the
replay buffer is not saved and refills first). The network runs on the device Accelerate picks (a GPU if there is
one); the emulator runs in one process, so under ``accelerate launch`` only the main process trains. The greedy
policy is evaluated on 10 whole games (unclipped score, all lives) every 250,000 steps and at the end. ``--smoke``
runs 300 steps with a buffer of 200 (updates from step 100), a checkpoint every 100 steps and a 2-game evaluation cut
at 200 frames each, on one thread.
"""

from __future__ import annotations

import dataclasses
import os

from annotated.rl.deep import ATARI_ID, NatureQNetwork, atari_dqn_config, evaluate_policy, make_atari_env, train_dqn
from scripts.full_scale import common


CHAPTER = "dqn_atari"


def main(argv: list[str] | None = None) -> dict | None:
    arguments = common.parser(CHAPTER, __doc__.splitlines()[0]).parse_args(argv)
    if int(os.environ.get("RANK", "0")) != 0:  # accelerate launch with several processes: one emulator is enough
        return None
    from accelerate import PartialState

    device = PartialState().device
    stopwatch = common.Stopwatch()
    config, checkpoint_every, eval_limit = atari_dqn_config(), 100_000, None
    if arguments.smoke:
        config = dataclasses.replace(config, total_timesteps=300, buffer_size=200, learning_starts=100,
                                     target_update_interval=50, eval_every=300, eval_episodes=2, num_threads=1)
        checkpoint_every, eval_limit = 100, 200
    train_env = lambda: make_atari_env(ATARI_ID, repeat_action_probability=0.0)  # noqa: E731
    game_env = lambda: make_atari_env(  # noqa: E731  (whole games, real score; cut short in the smoke run)
        ATARI_ID, episodic_life=False, clip_rewards=False, repeat_action_probability=0.0,
        **({} if eval_limit is None else {"max_episode_steps": eval_limit}))
    q_network, history = train_dqn(ATARI_ID, config, make_env=train_env, make_eval_env=game_env,
                                   q_network=NatureQNetwork(train_env().action_space.n), device=device,
                                   checkpoint_dir=arguments.out / "checkpoints", checkpoint_every=checkpoint_every)
    greedy = lambda obs: q_network(obs.to(device)).argmax(dim=1).cpu()  # noqa: E731
    returns = evaluate_policy(greedy, ATARI_ID, n_episodes=config.eval_episodes, make_env=game_env)
    metrics = {"eval_score_mean": float(returns.mean()), "eval_score_std": float(returns.std())}
    return common.write_results(
        CHAPTER, arguments.out, metrics=metrics, steps=history.env_steps, wall_seconds=stopwatch.seconds(),
        smoke=arguments.smoke,
        settings={**dataclasses.asdict(config), "env_id": ATARI_ID, "device": str(device),
                  "evaluations": list(zip(history.eval_steps, history.eval_returns)),
                  "source": "annotated.rl.deep.atari_dqn_config() (RL Baselines3 Zoo, hyperparams/dqn.yml, atari)"})


if __name__ == "__main__":
    common.run(CHAPTER, main)
