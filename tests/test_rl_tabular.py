"""annotated.rl.tabular: returns, dynamic programming, MC/TD prediction and Q-learning against value iteration."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from annotated.rl.tabular import (
    discounted_returns,
    epsilon_greedy_policy,
    evaluate_agent,
    greedy_policy,
    initialize_q_table,
    policy_evaluation,
    table_shape,
    td0_prediction,
    train,
    transition_arrays,
    value_iteration,
)


@pytest.fixture(scope="module")
def lake() -> gym.Env:
    return gym.make("FrozenLake-v1", map_name="4x4", is_slippery=False)


@pytest.fixture(scope="module")
def slippery() -> gym.Env:
    return gym.make("FrozenLake-v1", map_name="4x4", is_slippery=True)


def non_terminal(env: gym.Env) -> list[int]:
    return [s for s, c in enumerate(env.unwrapped.desc.flatten()) if c not in (b"H", b"G")]


def test_discounted_returns_match_the_definition():
    rewards = np.array([1.0, -2.0, 0.5, 3.0])
    expected = [sum(0.9**k * rewards[t + k] for k in range(len(rewards) - t)) for t in range(len(rewards))]
    assert np.allclose(discounted_returns(rewards, 0.9), expected)
    with pytest.raises(ValueError, match="gamma must be in"):
        discounted_returns(rewards, 1.5)


def test_tabular_code_refuses_continuous_spaces():
    with pytest.raises(ValueError, match="Discrete observation space"):
        table_shape(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="Discrete observation space"):
        value_iteration(gym.make("MountainCar-v0"))


def test_transition_arrays_are_stochastic_matrices_up_to_termination(slippery):
    transitions, rewards = transition_arrays(slippery)
    assert transitions.shape == (16, 4, 16) and rewards.shape == (16, 4)
    assert np.all(transitions.sum(axis=2) <= 1 + 1e-12)
    # From the cell left of the goal (14), moving right reaches the goal with probability 1/3: reward 1/3, terminal.
    assert np.isclose(rewards[14, 2], 1 / 3) and np.isclose(transitions[14, 2].sum(), 2 / 3)


def test_value_iteration_satisfies_the_bellman_optimality_equation(slippery):
    q_star = value_iteration(slippery, gamma=0.95)
    transitions, rewards = transition_arrays(slippery)
    assert np.allclose(q_star, rewards + 0.95 * transitions @ q_star.max(axis=1), atol=1e-9)
    # The optimal policy's exact value (linear solve) equals max_a Q*.
    policy = np.eye(4)[q_star.argmax(axis=1)]
    assert np.allclose(policy_evaluation(slippery, policy, 0.95), q_star.max(axis=1), atol=1e-8)


def test_value_iteration_on_the_deterministic_lake_is_gamma_to_the_distance(lake):
    q_star = value_iteration(lake, gamma=0.9)
    assert np.isclose(q_star[0].max(), 0.9**5)  # six steps from start to goal
    assert np.isclose(q_star[14, 2], 1.0)  # stepping right from 14 onto the goal


def test_epsilon_greedy_frequencies():
    rng = np.random.default_rng(1)
    q = initialize_q_table(1, 4)
    q[0, 2] = 1.0
    picks = np.array([epsilon_greedy_policy(q, 0, 0.4, rng) for _ in range(20_000)])
    assert greedy_policy(q, 0) == 2
    assert abs((picks == 2).mean() - (0.6 + 0.4 / 4)) < 0.015
    assert abs((picks == 0).mean() - 0.1) < 0.01
    with pytest.raises(ValueError, match="epsilon must be in"):
        epsilon_greedy_policy(q, 0, 1.5, rng)


def test_q_learning_converges_to_value_iteration_on_the_deterministic_lake(lake):
    q = train(10_000, 0.05, 1.0, 0.0005, lake, 99, initialize_q_table(16, 4), 0.7, 0.95, seed=3)
    q_star = value_iteration(lake, gamma=0.95)
    states = non_terminal(lake)
    assert np.abs(q - q_star)[states].max() < 1e-6  # stated tolerance: 1e-6 (deterministic, every pair visited)
    assert evaluate_agent(lake, 99, 10, q, seed=0) == (1.0, 0.0)


def test_q_learning_with_a_small_step_approaches_q_star_on_slippery_ice(slippery):
    q = train(10_000, 0.05, 1.0, 0.0005, slippery, 99, initialize_q_table(16, 4), 0.05, 0.95, seed=0)
    q_star = value_iteration(slippery, gamma=0.95)
    visited = [s for s in non_terminal(slippery) if s != 3]  # state 3 is (almost) never visited
    assert np.abs(q.max(axis=1) - q_star.max(axis=1))[visited].max() < 0.1


def test_untrained_table_fails_the_lake(lake):
    assert evaluate_agent(lake, 99, 10, initialize_q_table(16, 4), seed=0)[0] == 0.0


def test_td0_estimates_the_value_of_a_policy(slippery):
    q_star = value_iteration(slippery)
    policy = np.eye(4)[q_star.argmax(axis=1)]
    exact = policy_evaluation(slippery, policy, 0.95)
    estimate = td0_prediction(slippery, policy, n_episodes=2000, learning_rate=0.02, gamma=0.95, seed=1)
    assert abs(estimate[0] - exact[0]) < 0.03


def test_train_and_evaluate_check_shapes(lake):
    with pytest.raises(ValueError, match="Qtable must have shape"):
        train(1, 0.05, 1.0, 0.0005, lake, 99, initialize_q_table(500, 6))
    with pytest.raises(ValueError, match="one seed per evaluation episode"):
        evaluate_agent(lake, 99, 5, initialize_q_table(16, 4), seed=[1, 2])


def test_taxi_optimal_mean_on_fixed_seeds_is_reproducible():
    taxi = gym.make("Taxi-v4")
    q_star = value_iteration(taxi)
    seeds = list(range(20))
    first = evaluate_agent(taxi, 99, 20, q_star, seeds)
    assert first == evaluate_agent(taxi, 99, 20, q_star, seeds)
    assert first[0] > 5  # every episode delivers: +20 minus a short drive
