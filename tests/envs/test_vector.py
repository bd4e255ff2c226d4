import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import VecMonitor

from conftest import DEVICES, random_image
from deepexpose.envs import DeepExposureEnv, DeepExposureVecEnv, PairPool


def pool(n=40, size=16):
    return PairPool.from_photos([random_image(b=1, h=48, w=48, seed=i)[0] for i in range(3)], n, size=size)


def test_same_seed_same_trajectories_as_single_envs():
    p = pool()
    n, k = 3, 2
    vec = DeepExposureVecEnv(n, p, k=k)
    vec.seed(10)
    singles = [DeepExposureEnv(p, k=k) for _ in range(n)]
    obs_v = vec.reset()
    obs_s = [env.reset(seed=10 + i)[0] for i, env in enumerate(singles)]
    rng = np.random.default_rng(0)
    for step in range(3 * (k + 1)):  # three episodes, auto-reset included
        for key in obs_v:
            np.testing.assert_allclose(obs_v[key], np.stack([o[key] for o in obs_s]), atol=1)
        actions = rng.uniform(-1, 1, (n, 16)).astype(np.float32)
        obs_v, rew_v, done_v, infos = vec.step(actions)
        results = [env.step(a) for env, a in zip(singles, actions)]
        np.testing.assert_allclose(rew_v, [r[1] for r in results], atol=1e-4)
        assert list(done_v) == [r[2] for r in results]
        obs_s = [r[0] for r in results]
        if done_v[0]:
            for i, (env, r) in enumerate(zip(singles, results)):
                np.testing.assert_allclose(infos[i]["terminal_observation"]["image"], r[0]["image"], atol=1)
                assert infos[i]["edit"].keys() == r[4]["edit"].keys()
            obs_s = [env.reset()[0] for env in singles]


def test_vecmonitor_reports_episodes():
    vec = VecMonitor(DeepExposureVecEnv(4, pool(), k=1))
    vec.seed(0)
    vec.reset()
    for _ in range(2):
        _, _, dones, infos = vec.step(np.zeros((4, 16), np.float32))
    assert dones.all() and all("episode" in info and info["episode"]["l"] == 2 for info in infos)


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_device(device):
    vec = DeepExposureVecEnv(2, pool(), k=1, device=device)
    vec.reset()
    assert vec.core.inputs.device.type == device
    obs, rewards, dones, _ = vec.step(np.zeros((2, 16), np.float32))
    assert rewards.dtype == np.float32 and isinstance(obs["image"], np.ndarray)


def test_vec_interface():
    vec = DeepExposureVecEnv(2, pool(), k=1)
    assert vec.get_attr("render_mode") == [None, None]
    assert vec.env_is_wrapped(VecMonitor) == [False, False]
    vec.reset()
    assert len(vec.get_images()) == 2
    with pytest.raises(RuntimeError):
        vec.step_wait()
    with pytest.raises(ValueError):
        DeepExposureVecEnv(0, pool())
