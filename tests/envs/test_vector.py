import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import VecMonitor

from conftest import DEVICES, random_image
from deepexpose.envs import DeepExposureEnv, DeepExposureVecEnv, PairPool


def pool(n=40, size=16):
    return PairPool.from_photos([random_image(b=1, h=48, w=48, seed=i)[0] for i in range(3)], n, size=size)


def test_reset_options_pick_the_views_as_the_single_environment_s_do():
    """set_options({"index": i}) was cleared unread, and unknown options passed (found by a review of the API)."""
    v = DeepExposureVecEnv(2, pool=pool(8))
    v.seed(0)
    v.set_options({"index": 3})
    v.reset()
    assert v.indices.tolist() == [3, 3] and [info["index"] for info in v.reset_infos] == [3, 3]
    v.set_options([{"index": 5}, {}])
    v.seed(0)
    v.reset()
    single = DeepExposureEnv(pool(8))
    assert v.indices.tolist() == [5, single.reset(seed=1)[1]["index"]]  # the second draws as an env seeded 1
    v.reset()  # options hold for one reset: environment 0 now draws its first view, as an env seeded 0 does
    assert v.indices[0] == DeepExposureEnv(pool(8)).reset(seed=0)[1]["index"]
    v.set_options({"bogus": 1})
    with pytest.raises(ValueError, match="unknown reset option.*bogus; the only one is 'index'"):
        v.reset()
    v.set_options({"index": 8})
    with pytest.raises(IndexError, match="index 8 outside the pool of 8 views"):
        v.reset()
    v.set_options([{}, {}, {}])
    with pytest.raises(ValueError, match="a list of 2 \\(one per environment\\), got 3"):  # a bare zip() error
        v.reset()


def test_options_and_seeds_wait_for_the_next_reset_not_the_one_at_the_end_of_episodes():
    """As in stable-baselines3's DummyVecEnv: the automatic reset when episodes end took the options (both
    environments then started on view 7), found by review."""
    v = DeepExposureVecEnv(2, pool=pool(8))
    v.seed(3)
    v.reset()
    v.set_options({"index": 7})
    v.seed(0)
    for _ in range(v.core.steps):
        v.step_async(np.zeros((2, v.action_space.shape[0]), np.float32))
        _, _, done, _ = v.step_wait()
    assert done.all()
    after_episode = v.indices.tolist()
    fresh = DeepExposureVecEnv(2, pool=pool(8))
    fresh.seed(3)
    fresh.reset()
    fresh._begin(explicit=False)
    assert after_episode == fresh.indices.tolist()  # drawn by the generators seeded 3 and 4, their second views
    v.reset()
    assert v.indices.tolist() == [7, 7]


def test_renders_as_the_single_environment_does():
    v = DeepExposureVecEnv(2, pool=pool(4), render_mode="rgb_array")
    v.reset()
    frame = v.render()
    assert frame is not None and frame.ndim == 3 and frame.dtype == np.uint8
    with pytest.raises(ValueError, match="render_mode must be None or 'rgb_array'"):
        DeepExposureVecEnv(2, pool=pool(4), render_mode="human")


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
    a = vec.action_space.shape[0]
    with pytest.raises(ValueError, match=f"shape \\(2, {a}\\), got \\(2, 1\\)"):  # also at a local step
        vec.step_async(np.zeros((2, 1)))
    nan = np.zeros((2, a), np.float32)
    nan[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        vec.step_async(nan)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):  # when made, not at the first step
            DeepExposureVecEnv(2, pool(), device="cuda")


def test_the_environments_are_one_object():
    vec = DeepExposureVecEnv(3, pool(), k=1)
    calls = []
    vec.count_me = lambda x: calls.append(x) or len(calls)
    assert vec.env_method("count_me", 7, indices=[0, 2]) == [1, 1] and calls == [7]  # run once, not per index
    vec.set_attr("tag", "all")
    assert vec.get_attr("tag", indices=[1]) == ["all"]
    vec.set_attr("tag", "again", indices=[2, 0, 1])
    assert vec.get_attr("tag") == ["again"] * 3
    with pytest.raises(ValueError, match="all of them"):
        vec.set_attr("tag", "some", indices=[0])
    assert vec.tag == "again"


def test_view_cache_matches_fresh_envs():
    """Cached per-view constants (masks, linear input, reference, initial score) never go stale: episodes on
    views drawn again, and on views drawn for the first time, match an uncached VecEnv step for step."""
    views = pool(n=6)
    cached, fresh = DeepExposureVecEnv(4, views), DeepExposureVecEnv(4, views, cache_views=False)
    cached.seed(3)
    fresh.seed(3)
    obs_c, obs_f = cached.reset(), fresh.reset()
    rng = np.random.default_rng(0)
    for _ in range(5 * cached.core.steps):  # several resets: new and repeated views
        np.testing.assert_array_equal(cached.indices, fresh.indices)
        for key in obs_c:
            np.testing.assert_array_equal(obs_c[key], obs_f[key])
        torch.testing.assert_close(cached.core.masks, fresh.core.masks, rtol=0, atol=0)
        torch.testing.assert_close(cached.core.score, fresh.core.score)
        actions = rng.uniform(-1, 1, (4, cached.action_space.shape[0])).astype(np.float32)
        obs_c, rew_c, _, _ = cached.step(actions)
        obs_f, rew_f, _, _ = fresh.step(actions)
        np.testing.assert_allclose(rew_c, rew_f, atol=1e-6)
    assert bool(cached._cached.any())


def test_view_cache_is_bounded(monkeypatch):
    import deepexpose.envs.vector as vector
    from deepexpose.envs import default_pool as make_pool

    pool = make_pool()
    assert vector.DeepExposureVecEnv(2, pool).cache_views
    monkeypatch.setattr(vector, "CACHE_BYTES", 1000)
    env = vector.DeepExposureVecEnv(2, pool)
    assert not env.cache_views
    env.seed(0)
    env.reset()                                   # still works, computing the constants every reset
    assert not env._cached.any()


def test_rescore_after_the_critic_changed():
    from deepexpose.discriminator import Critic

    critic = Critic(width=8)
    vec = DeepExposureVecEnv(2, pool(), k=1, reward="adversarial", critic=critic)
    vec.reset()
    zero = np.zeros((2, vec.core.action_dim), np.float32)
    with torch.no_grad():
        critic.head.bias += 1.0  # a new critic: every score one higher (WGAN critics drift so)
    _, stale, *_ = vec.step(zero)
    assert np.allclose(stale, 1.0, atol=1e-4)  # the new critic's score of the result minus the old one's
    vec.reset()
    with torch.no_grad():
        critic.head.bias += 1.0
    vec.env_method("rescore")
    _, fresh, *_ = vec.step(zero)
    assert np.allclose(fresh, 0.0, atol=1e-4)  # "change nothing" is worth nothing under one critic
