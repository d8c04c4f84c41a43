"""Chapter 07's Atari pipeline against gymnasium's reference wrappers, on the real ALE SpaceInvaders.

``make_atari_env`` (our no-op reset, episodic life, frame skip with max-pooling, ``area_resize``, frame stack) and
gymnasium's ``AtariPreprocessing(noop_max=30, frame_skip=4, screen_size=84, grayscale_obs=True)`` followed by
``FrameStackObservation(..., 4)`` are stepped with the same seed and the same actions. Observations, rewards,
terminations and truncations are compared exactly, with one documented exception: the observation returned with
``terminated=True``. There gymnasium's wrapper returns pooled frames left over from the step before (its buffers are
filled only on the last two frames of a complete skip), ours the last two frames actually played; the training
target multiplies that observation's value by ``1 - terminated = 0``. After a lost life, gymnasium's wrapper restarts
the game while ours plays on (as DeepMind's and stable-baselines3's wrappers do), so that case is compared up to the
first lost life. gymnasium's wrapper needs OpenCV (``opencv-python-headless``, a test-only requirement).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch


ale_py = pytest.importorskip("ale_py")
gym.register_envs(ale_py)
ENV_ID = "ALE/SpaceInvaders-v5"


def _pair(terminal_on_life_loss: bool):
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    from annotated.rl.deep import make_atari_env

    ours = make_atari_env(ENV_ID, episodic_life=terminal_on_life_loss, clip_rewards=False, repeat_action_probability=0.25)
    reference = FrameStackObservation(AtariPreprocessing(
        gym.make(ENV_ID, frameskip=1, repeat_action_probability=0.25), noop_max=30, frame_skip=4, screen_size=84,
        terminal_on_life_loss=terminal_on_life_loss, grayscale_obs=True), 4)
    return ours, reference


def test_wrappers_equal_gymnasiums_over_whole_games():
    ours, reference = _pair(terminal_on_life_loss=False)
    a, _ = ours.reset(seed=3)
    b, _ = reference.reset(seed=3)
    assert a.shape == b.shape == (4, 84, 84) and a.dtype == b.dtype == np.uint8 and np.array_equal(a, b)
    rng, compared, ends, rewarded = np.random.default_rng(0), 0, 0, 0
    for _ in range(1_200):
        action = int(rng.integers(ours.action_space.n))
        a, reward_a, terminated_a, truncated_a, _ = ours.step(action)
        b, reward_b, terminated_b, truncated_b, _ = reference.step(action)
        assert (reward_a, terminated_a, truncated_a) == (reward_b, terminated_b, truncated_b)
        rewarded += reward_a > 0
        if terminated_a or truncated_a:
            ends += 1
            a, _ = ours.reset()
            b, _ = reference.reset()
        assert np.array_equal(a, b)
        compared += 1
    assert ends >= 1 and rewarded >= 10 and compared == 1_200  # several games, with rewards, seen


def test_episodic_life_ends_where_gymnasiums_does():
    ours, reference = _pair(terminal_on_life_loss=True)
    assert np.array_equal(ours.reset(seed=5)[0], reference.reset(seed=5)[0])
    rng = np.random.default_rng(1)
    for _ in range(1_000):
        action = int(rng.integers(ours.action_space.n))
        a, reward_a, terminated_a, truncated_a, _ = ours.step(action)
        b, reward_b, terminated_b, truncated_b, _ = reference.step(action)
        assert (reward_a, terminated_a, truncated_a) == (reward_b, terminated_b, truncated_b)
        if terminated_a:
            break
        assert np.array_equal(a, b)
    assert terminated_a and ours.unwrapped.ale.lives() == 2 and not ours.get_wrapper_attr("game_over")
    a, _ = ours.reset()  # the game goes on with the remaining lives
    assert ours.unwrapped.ale.lives() == 2 and a.shape == (4, 84, 84)


def test_area_resize_equals_opencv():
    cv2 = pytest.importorskip("cv2")
    from annotated.rl.deep import area_resize

    env = gym.make(ENV_ID, frameskip=1, obs_type="grayscale", repeat_action_probability=0.0)
    frame, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    for step in range(400):
        frame, *_ = env.step(int(rng.integers(6)))
        if step % 20 == 0:
            for height, width in [(84, 84), (105, 80), (64, 48), (84, 160)]:  # (105, 80): whole 2 x 2 blocks
                expected = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
                assert np.array_equal(area_resize(frame, height, width), expected), (step, height, width)
    noise = np.random.default_rng(1).integers(0, 256, (210, 160), dtype=np.uint8)  # many exact ties
    assert np.array_equal(area_resize(noise, 84, 84), cv2.resize(noise, (84, 84), interpolation=cv2.INTER_AREA))
    with pytest.raises(ValueError, match="2-D uint8"):
        area_resize(noise.astype(np.float32), 84, 84)
    with pytest.raises(ValueError, match="only shrinks"):
        area_resize(noise, 300, 84)


def test_clip_and_stack():
    from annotated.rl.deep import ClipReward, FrameStack, make_atari_env

    env = make_atari_env(ENV_ID, repeat_action_probability=0.0)
    assert isinstance(env, FrameStack) and isinstance(env.env, ClipReward)
    stack, _ = env.reset(seed=0)
    assert all(np.array_equal(stack[0], stack[k]) for k in range(4))  # after a reset: the first frame four times
    rewards = []
    for _ in range(300):
        new, reward, terminated, truncated, _ = env.step(1)  # FIRE
        assert np.array_equal(new[:3], stack[1:])  # the window slides by one frame
        stack = new
        rewards.append(reward)
        if terminated or truncated:
            break
    assert set(rewards) <= {0.0, 1.0} and 1.0 in rewards  # SpaceInvaders scores 5 to 30 points per invader
    with pytest.raises(ValueError, match="k must be"):
        FrameStack(env, 0)


def test_nature_network_shape_and_size():
    from annotated.rl.deep import NatureQNetwork

    network = NatureQNetwork(6)
    expected = (4 * 32 * 8 * 8 + 32) + (32 * 64 * 4 * 4 + 64) + (64 * 64 * 3 * 3 + 64) + (64 * 7 * 7 * 512 + 512) + (512 * 6 + 6)
    assert sum(p.numel() for p in network.parameters()) == expected == 1_687_206
    frames = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    assert network(frames).shape == (5, 6)
    assert torch.allclose(network(frames), network(frames.float()))  # bytes and floats 0-255 alike
    with pytest.raises(ValueError, match="expected frames of shape"):
        network(torch.zeros(1, 4, 64, 64))
