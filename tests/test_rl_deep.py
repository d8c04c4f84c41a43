"""annotated.rl.deep: DQN pieces, REINFORCE, GAE, the clipped objective and PPO, against stable-baselines3 where it has
the same computation (GAE in its RolloutBuffer, the actor-critic MlpPolicy)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from annotated.rl.deep import (
    Agent,
    Episode,
    PPOConfig,
    ReinforceConfig,
    ReplayBuffer,
    check_env,
    compute_gae,
    dqn_loss,
    dqn_target,
    episode_gradient,
    episode_gradients,
    evaluate_policy,
    fit_value,
    gradient_weights,
    linear_schedule,
    normalized_returns,
    play_episodes,
    ppo_clip_loss,
    reinforce,
    reinforce_loss,
    torch_threads,
    total_variance,
    train_ppo,
)


def test_check_env_refuses_tabular_and_continuous_action_environments():
    assert check_env(gym.make("CartPole-v1")) == (4, 2)
    with pytest.raises(ValueError, match="flat Box observation space"):
        check_env(gym.make("FrozenLake-v1"))
    with pytest.raises(ValueError, match="Discrete action space"):
        check_env(gym.make("Pendulum-v1"))
    with pytest.raises(ValueError, match="flat Box observation space"):
        train_ppo("Taxi-v4", PPOConfig(total_timesteps=256))


def test_torch_threads_restores_the_setting():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_compute_gae_matches_stable_baselines3_rollout_buffer():
    from stable_baselines3.common.buffers import RolloutBuffer

    steps, n_envs, gamma, lam = 7, 3, 0.97, 0.9
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(steps, n_envs)).astype(np.float32)
    values = rng.normal(size=(steps, n_envs)).astype(np.float32)
    dones = (rng.random((steps, n_envs)) < 0.25).astype(np.float32)
    last_value = rng.normal(size=n_envs).astype(np.float32)

    env = gym.make("CartPole-v1")
    buffer = RolloutBuffer(steps, env.observation_space, env.action_space, "cpu", gae_lambda=lam, gamma=gamma, n_envs=n_envs)
    for t in range(steps):
        # SB3 marks the *first* step of an episode; ours marks the last. dones[t - 1] == episode_starts[t].
        episode_start = dones[t - 1] if t > 0 else np.zeros(n_envs, dtype=np.float32)
        buffer.add(np.zeros((n_envs, 4), dtype=np.float32), np.zeros((n_envs, 1)), rewards[t], episode_start,
                   torch.as_tensor(values[t]), torch.zeros(n_envs))
    buffer.compute_returns_and_advantage(torch.as_tensor(last_value), dones[-1])

    advantages, returns = compute_gae(torch.as_tensor(rewards), torch.as_tensor(values), torch.as_tensor(dones),
                                      torch.as_tensor(last_value), gamma, lam)
    np.testing.assert_allclose(advantages.numpy(), buffer.advantages, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(returns.numpy(), buffer.returns, rtol=1e-5, atol=1e-5)


def test_compute_gae_hand_example_and_shape_checks():
    advantages, _ = compute_gae(torch.ones(3, 1), torch.full((3, 1), 0.5), torch.tensor([[0.0], [1.0], [0.0]]),
                                torch.tensor([2.0]), gamma=0.9, lam=0.5)
    assert torch.allclose(advantages[:, 0], torch.tensor([1.175, 0.5, 2.3]))
    with pytest.raises(ValueError, match="share a \\(steps, envs\\) shape"):
        compute_gae(torch.ones(3, 2), torch.ones(3, 1), torch.ones(3, 2), torch.ones(2), 0.9, 0.9)
    with pytest.raises(ValueError, match="last_value must have shape"):
        compute_gae(torch.ones(3, 2), torch.ones(3, 2), torch.ones(3, 2), torch.ones(3), 0.9, 0.9)


def test_agent_matches_stable_baselines3_mlp_policy_with_the_same_weights():
    from stable_baselines3 import PPO

    torch.manual_seed(0)
    policy = PPO("MlpPolicy", "CartPole-v1", device="cpu", seed=0).policy
    agent = Agent(4, 2)
    with torch.no_grad():
        pairs = [
            (agent.actor[0], policy.mlp_extractor.policy_net[0]), (agent.actor[2], policy.mlp_extractor.policy_net[2]),
            (agent.actor[4], policy.action_net), (agent.critic[0], policy.mlp_extractor.value_net[0]),
            (agent.critic[2], policy.mlp_extractor.value_net[2]), (agent.critic[4], policy.value_net),
        ]
        for ours, theirs in pairs:
            ours.weight.copy_(theirs.weight)
            ours.bias.copy_(theirs.bias)
    observations = torch.randn(32, 4)
    actions = torch.randint(0, 2, (32,))
    with torch.no_grad():
        values, log_prob, entropy = policy.evaluate_actions(observations, actions)
        _, our_log_prob, our_entropy, our_values = agent.get_action_and_value(observations, actions)
    torch.testing.assert_close(our_log_prob, log_prob, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(our_entropy, entropy, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(our_values, values[:, 0], atol=1e-6, rtol=1e-6)
    sb3_actions, _ = policy.predict(observations.numpy(), deterministic=True)
    assert np.array_equal(agent.act(observations).numpy(), sb3_actions)


def test_ppo_clip_loss_equals_its_definition_on_both_sides():
    ratio = torch.tensor([0.5, 1.0, 1.5, 0.5, 1.0, 1.5])
    advantages = torch.tensor([2.0, 2.0, 2.0, -2.0, -2.0, -2.0])
    expected = -torch.tensor([1.0, 2.0, 2.4, -1.6, -2.0, -3.0]).mean()
    assert torch.isclose(ppo_clip_loss(ratio, advantages, 0.2), expected)
    ratio, advantages = torch.rand(100) * 2, torch.randn(100)
    definition = -torch.min(ratio * advantages, torch.clamp(ratio, 0.9, 1.1) * advantages).mean()
    assert torch.isclose(ppo_clip_loss(ratio, advantages, 0.1), definition)
    with pytest.raises(ValueError, match="same shape"):
        ppo_clip_loss(torch.ones(3), torch.ones(4), 0.2)
    with pytest.raises(ValueError, match="clip_coef must be positive"):
        ppo_clip_loss(torch.ones(3), torch.ones(3), 0.0)


def test_replay_buffer_is_circular_and_seeded():
    buffer = ReplayBuffer(4, 2, seed=5)
    for i in range(6):
        buffer.add(np.full(2, i, dtype=np.float32), i % 2, float(i), np.full(2, i + 1, dtype=np.float32), False)
    assert len(buffer) == 4 and sorted(buffer.rewards.tolist()) == [2.0, 3.0, 4.0, 5.0]
    again = ReplayBuffer(4, 2, seed=5)
    for i in range(6):
        again.add(np.full(2, i, dtype=np.float32), i % 2, float(i), np.full(2, i + 1, dtype=np.float32), False)
    assert torch.equal(buffer.sample(8)["rewards"], again.sample(8)["rewards"])
    with pytest.raises(ValueError, match="empty replay buffer"):
        ReplayBuffer(2, 2).sample(1)
    with pytest.raises(ValueError, match="observation must have shape"):
        buffer.add(np.zeros(3), 0, 0.0, np.zeros(3), False)


def test_dqn_loss_is_huber_on_the_td_error_and_stops_at_terminals():
    net = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.eye(2))
    batch = {"observations": torch.tensor([[0.0, 0.0]]), "actions": torch.tensor([0]), "rewards": torch.tensor([0.5]),
             "next_observations": torch.tensor([[1.0, 3.0]]), "terminated": torch.tensor([0.0])}
    assert torch.isclose(dqn_loss(net, net, batch, gamma=1.0), torch.tensor(3.0))  # error 3.5 -> 3.5 - 0.5
    batch["terminated"] = torch.tensor([1.0])
    assert torch.isclose(dqn_loss(net, net, batch, gamma=1.0), torch.tensor(0.125))  # error 0.5 -> 0.5 * 0.5^2
    assert linear_schedule(1.0, 0.0, 10, 5) == 0.5 and linear_schedule(1.0, 0.0, 10, 50) == 0.0


def test_reinforce_gradient_and_normalisation():
    returns = normalized_returns([1.0, 0.0, 2.0, 1.0], gamma=0.9)
    assert abs(float(returns.mean())) < 1e-6 and abs(float(returns.std()) - 1.0) < 1e-5
    log_probs = torch.log(torch.tensor([0.5, 0.25], requires_grad=True))
    assert torch.isclose(reinforce_loss(log_probs, torch.tensor([1.0, -1.0])), -(np.log(0.5) - np.log(0.25)) * torch.ones(()))


def test_train_ppo_is_deterministic_for_a_seed():
    config = PPOConfig(total_timesteps=1024, eval_every=512, seed=4)
    _, first = train_ppo("CartPole-v1", config)
    _, second = train_ppo("CartPole-v1", config)
    assert first.losses == second.losses and first.eval_returns == second.eval_returns
    assert first.env_steps == 1024


def test_ppo_solves_cartpole():
    agent, history = train_ppo("CartPole-v1", PPOConfig(total_timesteps=60_000, eval_every=1024, target_return=475, seed=1))
    assert history.solved_at_step is not None and history.solved_at_step <= 40_000
    assert evaluate_policy(agent.act, "CartPole-v1", n_episodes=10, seed=777).mean() >= 400


def test_reinforce_learns_and_an_untrained_policy_does_not():
    policy, history = reinforce("CartPole-v1", ReinforceConfig(n_episodes=150, eval_every=10, target_return=300, seed=1))
    assert history.solved_at_step is not None
    untrained = evaluate_policy(Agent(4, 2).act, "CartPole-v1", n_episodes=10)
    assert untrained.mean() < 100


def test_gradient_weights_by_hand():
    rewards, values = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.5, 1.0, 0.2])
    weights = gradient_weights(rewards, values, gamma=0.5, lambdas=(0.0, 1.0))
    reward_to_go = torch.tensor([1.0 + 0.5 * 0.0 + 0.25 * 2.0, 0.0 + 0.5 * 2.0, 2.0])
    assert torch.allclose(weights["reward-to-go"], reward_to_go)
    assert torch.allclose(weights["full return"], torch.full((3,), 1.5))
    assert torch.allclose(weights["value baseline"], reward_to_go - values)
    assert torch.allclose(weights["GAE 1"], weights["value baseline"])  # a complete episode: lambda 1 is G_t - V
    td_errors = torch.tensor([1.0 + 0.5 * 1.0 - 0.5, 0.0 + 0.5 * 0.2 - 1.0, 2.0 - 0.2])  # no bootstrap at the end
    assert torch.allclose(weights["GAE 0"], td_errors)
    with pytest.raises(ValueError, match="share a"):
        gradient_weights(rewards, values[:2], gamma=0.5)


def test_total_variance_is_the_trace_of_the_covariance():
    samples = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]])
    assert np.isclose(total_variance(samples), float(np.trace(np.cov(samples.numpy().T))))
    with pytest.raises(ValueError, match="at least two"):
        total_variance(samples[:1])


def test_episode_gradients_equal_the_plain_backward_pass_and_the_baseline_lowers_the_variance():
    torch.manual_seed(0)
    agent = Agent(4, 2)
    episodes = play_episodes(agent.actor, "CartPole-v1", 40, seed=3)
    assert all(isinstance(e, Episode) and len(e.rewards) == len(e.actions) == len(e.observations) for e in episodes)
    assert all(torch.equal(a.actions, b.actions) for a, b in zip(play_episodes(agent.actor, "CartPole-v1", 40, seed=3), episodes))
    fit_value(agent.critic, episodes, gamma=0.99, epochs=30, seed=0)
    with torch.no_grad():
        weights = [gradient_weights(e.rewards, agent.critic(e.observations)[:, 0], 0.99) for e in episodes]
    fast = episode_gradients(agent.actor, episodes, weights, chunk=64)  # several chunks
    for i in (0, 17, 39):
        for name, psi in weights[i].items():
            assert torch.allclose(episode_gradient(agent.actor, episodes[i], psi), fast[name][i], rtol=1e-4, atol=1e-4)
    variance = {name: total_variance(g) for name, g in fast.items()}
    assert variance["full return"] > variance["reward-to-go"] > variance["value baseline"] > variance["GAE 0"]


def test_double_dqn_target_lets_the_online_network_pick_and_the_target_network_value():
    online, target = nn.Linear(2, 3, bias=False), nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        online.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]))  # picks action 1 on s' = (0, 2)
        target.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 0.5], [0.0, 2.0]]))  # values (0, 1, 4) on s' = (0, 2)
    batch = {"observations": torch.zeros(2, 2), "actions": torch.tensor([0, 2]), "rewards": torch.tensor([0.5, -1.0]),
             "next_observations": torch.tensor([[0.0, 2.0], [0.0, 2.0]]), "terminated": torch.tensor([0.0, 1.0])}
    gamma = 0.9
    plain = dqn_target(online, target, batch, gamma)
    double = dqn_target(online, target, batch, gamma, double_q=True)
    assert torch.allclose(plain, torch.tensor([0.5 + gamma * 4.0, -1.0]))  # max over the target network
    assert torch.allclose(double, torch.tensor([0.5 + gamma * 1.0, -1.0]))  # target network's value of online argmax
    assert not plain.requires_grad and not double.requires_grad
    # the loss uses that target, and the default stays DQN's
    q_taken = online(batch["observations"]).gather(1, batch["actions"][:, None])[:, 0]
    loss = dqn_loss(online, target, batch, gamma, double_q=True)
    assert torch.isclose(loss, nn.functional.smooth_l1_loss(q_taken, double))
    assert torch.equal(dqn_loss(online, target, batch, gamma), nn.functional.smooth_l1_loss(q_taken, plain))


def test_hub_layout_round_trip(tmp_path):
    """A briefly trained PPO agent saved in the Hub's folder layout reloads with the same actions, configuration and
    evaluation; the model card's YAML carries the course's metadata."""
    import json

    import yaml

    from annotated.rl.deep import PPOConfig, evaluate_policy, load_from_hub_layout, save_to_hub_layout, train_ppo

    config = PPOConfig(total_timesteps=2_048, eval_every=10**9, seed=0)
    agent, _ = train_ppo("CartPole-v1", config)
    save_to_hub_layout(tmp_path / "ppo-CartPole-v1", agent, config, "CartPole-v1", n_eval_episodes=5, eval_seed=321)
    folder = tmp_path / "ppo-CartPole-v1"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors", "results.json"]
    loaded, loaded_config, results = load_from_hub_layout(folder)
    assert loaded_config == config
    probe = torch.as_tensor(np.stack([gym.make("CartPole-v1").reset(seed=s)[0] for s in range(64)]))
    assert torch.equal(loaded.act(probe), agent.act(probe))
    again = evaluate_policy(loaded.act, "CartPole-v1", n_episodes=results["n_evaluation_episodes"], seed=results["eval_seed"])
    assert results["n_evaluation_episodes"] == 5 and again.mean() == results["mean_reward"] and again.std() == results["std_reward"]
    assert json.loads((folder / "results.json").read_text())["env_id"] == "CartPole-v1"
    card = (folder / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["library_name"] == "annotated"
    assert {"CartPole-v1", "reinforcement-learning", "deep-reinforcement-learning"} <= set(header["tags"])
    metric = header["model-index"][0]["results"][0]["metrics"][0]
    assert metric["type"] == "mean_reward" and metric["value"] == f"{again.mean():.2f} +/- {again.std():.2f}"
    stored = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**stored, "n_envs_typo": 4}))
    with pytest.raises(ValueError, match="n_envs_typo"):  # a field the loader does not implement is refused
        load_from_hub_layout(folder)
    (folder / "config.json").write_text(json.dumps({**stored, "algorithm": "dqn"}))
    with pytest.raises(ValueError, match="PPO"):
        load_from_hub_layout(folder)
    (folder / "config.json").unlink()
    with pytest.raises(ValueError, match="missing"):
        load_from_hub_layout(folder)
