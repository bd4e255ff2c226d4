import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import deepexpose  # noqa: F401  (registers DeepExpose-v0)
from conftest import random_image
from deepexpose.discriminator import Critic
from deepexpose.envs import DeepExposureEnv, PairPool
from deepexpose.filters import adjust_exposure


def small_pool(n=6, size=16):
    return PairPool.from_photos([random_image(b=1, h=48, w=48, seed=i)[0] for i in range(2)], n, size=size)


def exposure_pool(size=16):
    """Targets are the photos; inputs are the photos one stop darker."""
    t = random_image(b=2, h=size, w=size, low=0.1, high=0.6)
    x = adjust_exposure(t, -1.0)
    q = lambda v: (v * 255).round().to(torch.uint8)  # noqa: E731
    return PairPool(q(x), q(t))


def test_both_checkers_pass():
    env = DeepExposureEnv(small_pool())
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env)


def test_render_gives_the_current_result():
    env = DeepExposureEnv(small_pool(), k=2, render_mode="rgb_array")
    gym_check_env(env)  # with its render check
    obs, _ = env.reset(seed=0)
    for _ in range(2):
        frame = env.render()
        assert frame.shape == (16, 16, 3) and frame.dtype == np.uint8
        np.testing.assert_array_equal(frame, obs["image"].transpose(1, 2, 0))
        obs, *_ = env.step(np.full(env.action_space.shape, 0.8, np.float32))
    assert not np.array_equal(env.render(), frame)  # the edit shows
    assert DeepExposureEnv(small_pool()).render() is None


def test_registered_with_gymnasium():
    env = gym.make("DeepExpose-v0", pool=small_pool(), k=2)
    obs, info = env.reset(seed=1)
    assert obs["step"].shape == (3,) and "score" in info


def test_observation_layout_and_episode_length():
    env = DeepExposureEnv(small_pool(size=16), k=3)
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == obs["input"].shape == (3, 16, 16) and obs["image"].dtype == np.uint8
    assert obs["mask"].shape == (1, 16, 16) and obs["step"].tolist() == [1, 0, 0, 0]
    assert np.array_equal(obs["image"], obs["input"])
    assert env.action_space.shape == (16,)
    for step in range(4):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert terminated == (step == 3) and not truncated
    assert set(info["edit"]) >= {"local_exposure", "exposure", "white_balance", "tone_curve"}
    assert len(info["edit"]["local_exposure"]["ev"]) == 3
    assert np.all(obs["mask"] == 255)  # the final step's mask is the whole image
    with pytest.raises(RuntimeError):
        env.step(env.action_space.sample())


def test_seeding():
    env = DeepExposureEnv(small_pool(n=50))
    a = [env.reset(seed=5)[1]["index"] for _ in range(1)] + [env.reset()[1]["index"] for _ in range(5)]
    b = [env.reset(seed=5)[1]["index"] for _ in range(1)] + [env.reset()[1]["index"] for _ in range(5)]
    c = [env.reset(seed=6)[1]["index"] for _ in range(1)] + [env.reset()[1]["index"] for _ in range(5)]
    assert a == b != c
    assert env.reset(options={"index": 3})[1]["index"] == 3
    with pytest.raises(IndexError):
        env.reset(options={"index": 50})


def run_episode(env, global_action, local=0.0):
    env.reset(options={"index": 0})
    rewards = []
    for _ in range(env.core.k):
        a = np.zeros(16, np.float32)
        a[0] = local
        rewards.append(env.step(a)[1])
    rewards.append(env.step(global_action)[1])
    return rewards


def test_paired_reward_signs():
    env = DeepExposureEnv(exposure_pool(), k=2, edge_penalty=0.0)
    zero = np.zeros(16, np.float32)
    assert run_episode(env, zero) == [0.0, 0.0, 0.0]  # changing nothing earns nothing
    toward = zero.copy()
    toward[2] = 1 / 3  # global exposure +1 EV undoes the detuning
    away = zero.copy()
    away[2] = -1 / 3
    assert run_episode(env, toward)[-1] > 0.5 > 0 > run_episode(env, away)[-1]
    # local steps: +1 EV on every sub-image is also an edit toward the target
    local = run_episode(env, zero, local=1 / 3)
    assert local[0] > 0 and local[1] > 0 and sum(local) > 0.5
    # the return is the improvement of the final score (rewards telescope)
    env.reset(options={"index": 0})
    start = env.core.score.clone()
    total = sum(run_episode(env, toward))
    assert total == pytest.approx(0.1 * float(env.core.score[0] - start[0]), abs=1e-4)


def test_edge_penalty():
    env = DeepExposureEnv(exposure_pool(), k=1, edge_penalty=0.5)
    env.reset(options={"index": 0})
    a = np.zeros(16, np.float32)
    a[0] = 1.0
    assert env.step(a)[1] < 0  # +3 EV overshoots and sits at the edge
    env.reset(options={"index": 0})
    env.step(np.zeros(16, np.float32))
    b = np.zeros(16, np.float32)
    b[5] = 1.0  # gamma at the edge of its range
    with_penalty = env.step(b)[1]
    env2 = DeepExposureEnv(exposure_pool(), k=1, edge_penalty=0.0)
    env2.reset(options={"index": 0})
    env2.step(np.zeros(16, np.float32))
    assert with_penalty == pytest.approx(env2.step(b)[1] - 0.5, abs=1e-5)


def test_adversarial_reward_is_critic_improvement():
    critic = Critic(width=4)
    env = DeepExposureEnv(small_pool(), k=1, reward="adversarial", critic=critic, edge_penalty=0.0)
    env.reset(options={"index": 0})
    with torch.no_grad():
        before = critic(env.core.inputs)
    env.step(np.zeros(16, np.float32))
    a = np.full(16, 0.3, np.float32)
    _, reward, *_ = env.step(a)
    with torch.no_grad():
        after = critic(env.core.current)
    assert reward == pytest.approx(float(after - before), abs=1e-5)


def test_reward_needs_the_right_inputs():
    unpaired = PairPool(small_pool().inputs)
    with pytest.raises(ValueError, match="targets"):
        DeepExposureEnv(unpaired, reward="paired")
    for reward in ("adversarial", "mixed"):  # named as asked, when the environment is made
        with pytest.raises(ValueError, match=f"the {reward} reward scores with a critic"):
            DeepExposureEnv(unpaired, reward=reward)
    with pytest.raises(ValueError, match="reward"):
        DeepExposureEnv(small_pool(), reward="likes")
    with pytest.raises(ValueError, match="the 'psnr' reward needs a pool with targets"):  # it failed at reset
        DeepExposureEnv(unpaired, reward="psnr")


def test_the_environment_pickles_and_goes_on_as_it_was():
    """Its filters held lambdas, so pickle (multiprocessing's spawn, a saved environment) failed (found by a review
    of the API)."""
    import pickle

    env = DeepExposureEnv(small_pool())
    env.reset(seed=0)
    action = np.full(env.action_space.shape, 0.3, np.float32)
    copy = pickle.loads(pickle.dumps(env))
    first, second = env.step(action), copy.step(action)
    assert first[1] == second[1] and all(np.array_equal(first[0][k], second[0][k]) for k in first[0])


def test_bad_arguments_are_refused_when_the_environment_is_made():
    """Found by a review of the API: each failed late (at reset or the first step) or as an AttributeError."""
    pool = small_pool()
    for kwargs, error, words in [
            ({"segmentation": "bogus"}, ValueError, "unknown segmentation 'bogus'; choose from luminosity"),
            ({"filters": []}, ValueError, "at least one filter"),
            ({"filters": ["exposure", "exposure"]}, ValueError, "each filter once.*exposure given twice"),
            ({"k": "3"}, ValueError, "k must be a whole number >= 1, got '3'"),
            ({"edge": 1.0}, ValueError, r"edge must be in \[0, 1\)"),  # every reward was NaN
            ({"edge": -0.5}, ValueError, "edge must be"),
            ({"edge_penalty": -1.0}, ValueError, "edge_penalty >= 0"),
            ({"render_mode": "human"}, ValueError, "render_mode must be None or 'rgb_array'"),
            ({"pool": pool.inputs}, TypeError, "pool must be a PairPool")]:
        with pytest.raises(error, match=words):
            DeepExposureEnv(**{"pool": pool, **kwargs})
    env = DeepExposureEnv(pool, render_mode="rgb_array")
    for call in (lambda: env.step(np.zeros(env.action_space.shape, np.float32)), env.render, env.core.describe,
                 env.core.rescore):
        with pytest.raises(RuntimeError, match="no episode has begun: reset the environment first"):
            call()
    env.reset(seed=0)
    assert env.render().shape == (16, 16, 3)


def test_no_grad_steps_match_gradient_steps():
    """The core's fast path without gradients (linear light kept between steps, scored without decoding)
    gives the rewards and images of the differentiable path."""
    from deepexpose.envs import EditCore

    pool = small_pool(n=4)
    inputs, targets = pool.get(np.arange(4), "cpu")
    actions = torch.rand(3, 4, 16, generator=torch.Generator().manual_seed(1)) * 2.2 - 1.1
    actions[:, 0] = 0.0  # one image left unchanged
    runs = []
    for grad in (False, True):
        core = EditCore(k=2)
        with torch.no_grad():
            core.begin(inputs, targets)
        with torch.set_grad_enabled(grad):
            steps = [core.step(a.requires_grad_(grad)) for a in actions.clone()]
            runs.append(([r.detach() for r, _ in steps], core.current.detach(), core.local.detach()))
    (fast_r, fast_img, fast_local), (slow_r, slow_img, slow_local) = runs
    for f, s in zip(fast_r, slow_r, strict=True):
        torch.testing.assert_close(f, s, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast_img, slow_img, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(fast_local, slow_local, atol=1e-6, rtol=1e-5)
    assert torch.equal(fast_img[0], inputs[0])


def test_wrong_actions_and_reset_options_are_refused_by_name():
    env = DeepExposureEnv(small_pool())
    env.reset(seed=0)
    a = env.action_space.shape[0]
    for bad in (np.zeros(3), np.zeros(a + 5), np.zeros((2, a))):  # at a local step too, where one value is used
        with pytest.raises(ValueError, match=f"shape \\({a},\\)"):
            env.step(bad)
    nan = np.zeros(a, np.float32)
    nan[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        env.step(nan)
    for _ in range(env.core.steps):  # the refused actions changed nothing: a whole episode is still ahead
        done = env.step(np.zeros(a, np.float32))[2]
    assert done
    with pytest.raises(RuntimeError, match="reset the environment"):
        env.step(np.zeros(a, np.float32))
    with pytest.raises(TypeError, match="must be an int"):
        env.reset(options={"index": 1.7})
    with pytest.raises(ValueError, match="unknown reset option.*idx"):
        env.reset(options={"idx": 1})
    assert env.reset(options={"index": np.int64(1)})[1]["index"] == 1
