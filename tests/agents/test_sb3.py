"""stable-baselines3 agents: the features extractor's scaling, every algorithm end to end, pickle-free
checkpoints and resuming."""

import json
import math
import time
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecMonitor

from deepexpose import DeepExposeWarning
from deepexpose.agents import sb3
from deepexpose.agents.sb3 import StatsCnnExtractor, algo_kwargs, evaluate_sb3, make_sb3_model, train_sb3
from deepexpose.agents.checkpoint import read_meta
from deepexpose.agents.networks import COLOUR_STATS_DIM
from deepexpose.discriminator import Critic
from deepexpose.agents.train import TrainConfig, build_pools, build_split_pools, selection_score, train
from deepexpose.envs import EditCore, PairPool
from deepexpose.envs.deepexpose_env import observation_space
from deepexpose.envs.vector import DeepExposureVecEnv
from deepexpose.metrics import psnr

VIEW, K = 16, 2
pytestmark = pytest.mark.filterwarnings("ignore:tensorboard is not installed")


def tiny(tmp_path, **kw):
    base = dict(out=str(tmp_path / "run"), steps=300, workers=4, batch=16, pool_size=16, eval_size=4, view=VIEW,
                k=K, eval_every=100, checkpoint_every=100, progress=False)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks: one thread is several times faster than two fighting over busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pools(one_thread):
    return build_pools(TrainConfig(pool_size=16, eval_size=4, view=VIEW))


def saved(out):
    return load_file(str(out / "checkpoint.safetensors"))


def policy_state(model):
    return {f"module.policy.{k}": v.detach().clone() for k, v in model.policy.state_dict().items()}


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_extractor_gets_images_in_unit_range_once(algo):
    from stable_baselines3 import PPO, SAC

    space = observation_space(64, 4)
    pool = PairPool.from_photos([torch.rand(3, 80, 96, generator=torch.Generator().manual_seed(1))], 4, size=64)
    env = DeepExposureVecEnv(2, pool, k=3)
    assert env.observation_space == space
    cls = {"ppo": PPO, "sac": SAC}[algo]
    model = cls("MultiInputPolicy", env, policy_kwargs=dict(features_extractor_class=StatsCnnExtractor,
                                                            features_extractor_kwargs=dict(use_cnn=True)),
                **({"buffer_size": 10} if algo == "sac" else {"n_steps": 4, "batch_size": 8}))
    extractor = model.policy.features_extractor if algo == "ppo" else model.policy.actor.features_extractor
    assert isinstance(extractor, StatsCnnExtractor)
    seen = []
    extractor.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    obs = {k: np.full((3, *s.shape), 255, dtype=s.dtype) if s.dtype == np.uint8 else np.eye(4, dtype=np.float32)[:3]
           for k, s in space.spaces.items()}
    with torch.no_grad():
        tensors, _ = model.policy.obs_to_tensor(obs)
        features = model.policy.extract_features(tensors, extractor)
    assert features.shape == (3, 128) and features.dtype == torch.float32 and torch.isfinite(features).all()
    for key in ("image", "input", "mask"):
        assert seen[0][key].dtype == torch.float32 and seen[0][key].min() == 1 and seen[0][key].max() == 1
    assert torch.equal(seen[0]["step"], torch.eye(4)[:3])


def test_extractor_scales_itself_when_the_policy_does_not():
    space = observation_space(16, 4)
    ext = StatsCnnExtractor(space, features_dim=32, use_cnn=False, normalize_images=False)
    seen = []
    ext.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    obs = {"image": torch.full((2, 3, 16, 16), 255.0), "input": torch.full((2, 3, 16, 16), 51.0),
           "mask": torch.full((2, 1, 16, 16), 255.0), "step": torch.eye(4)[:2]}
    assert ext(obs).shape == (2, 32)
    assert seen[0]["image"].max() == 1 and torch.allclose(seen[0]["input"], torch.tensor(0.2))
    assert torch.equal(seen[0]["step"], obs["step"])  # not an image: untouched


def test_evaluate_sb3_runs_the_deterministic_policy(tmp_path, pools):
    cfg = tiny(tmp_path, algo="ppo")
    env = VecMonitor(DeepExposureVecEnv(2, pools[0], k=K))
    model = make_sb3_model(cfg, env, torch.device("cpu"))
    torch.nn.init.normal_(model.policy.action_net.weight, std=0.3, generator=torch.Generator().manual_seed(0))
    core = EditCore(k=K)
    x, t = pools[1].get(list(range(len(pools[1]))))
    core.begin(x, t)
    done = False
    while not done:
        obs = {k: v.numpy() for k, v in core.observation().items()}
        _, done = core.step(torch.as_tensor(model.predict(obs, deterministic=True)[0]))
    result = evaluate_sb3(model, EditCore(k=K), pools[1])
    detuned = [i for i, r in enumerate(pools[1].records) if r.get("class") != "correct"]
    assert detuned and result["psnr"] == pytest.approx(np.mean([psnr(core.current[i], t[i]) for i in detuned]))
    assert result["psnr"] != pytest.approx(result["input_psnr"])  # the edits are not "change nothing"


@pytest.mark.parametrize("algo", ["a2c", "ppo", "sac", "td3"])
def test_every_algorithm_starts_from_change_nothing_and_can_leave_it(tmp_path, pools, algo):
    cfg = tiny(tmp_path, algo=algo)
    model = make_sb3_model(cfg, VecMonitor(DeepExposureVecEnv(2, pools[0], k=K)), torch.device("cpu"))
    result = evaluate_sb3(model, EditCore(k=K), pools[1])
    assert (result["psnr"], result["delta_e2000"]) == (result["input_psnr"], result["input_delta_e2000"])
    core = EditCore(k=K)
    core.begin(*pools[1].get([0, 1]))
    obs, _ = model.policy.obs_to_tensor({k: v.numpy() for k, v in core.observation().items()})
    if algo in ("a2c", "ppo"):  # explores with the project's a3c's standard deviation, not SB3's 1
        assert torch.allclose(model.policy.log_std.exp(), torch.full((16,), math.exp(-1.5)))
        mean = model.policy.get_distribution(obs).distribution.mean
        head = model.policy.action_net
    else:
        mean = model.policy.actor(obs, deterministic=True) if algo == "sac" else model.policy.actor(obs)
        head = model.policy.actor.mu if algo == "sac" else model.policy.actor.mu[-2]
    assert not mean.detach().any()
    mean.sum().backward()
    assert head.weight.grad.abs().sum() > 0  # the zeroed head still learns
    if algo == "td3":
        assert all(torch.equal(a, b) for a, b in zip(model.policy.actor.state_dict().values(),
                                                     model.policy.actor_target.state_dict().values(), strict=True))
    if algo in ("sac", "td3"):  # one minibatch of uniform random actions, then the policy's own exploration
        assert model.learning_starts == cfg.batch


@pytest.mark.parametrize("colour_stats, chroma", [(False, False), (True, False), (False, True), (True, True)])
def test_colour_stats_and_chroma_reach_the_extractor(tmp_path, pools, colour_stats, chroma):
    cfg = tiny(tmp_path, algo="ppo", colour_stats=colour_stats, chroma=chroma)
    model = make_sb3_model(cfg, VecMonitor(DeepExposureVecEnv(2, pools[0], k=K)), torch.device("cpu"))
    encoder = model.policy.features_extractor.encoder
    assert encoder.colour is colour_stats
    assert encoder.chroma is chroma and hasattr(encoder, "chroma_net") is chroma
    # the colour statistics widen the first layer: two sets of them (current result and input), one per channel
    plain = make_sb3_model(tiny(tmp_path, algo="ppo", colour_stats=False, chroma=chroma),
                           VecMonitor(DeepExposureVecEnv(2, pools[0], k=K)), torch.device("cpu"))
    widths = [m.policy.features_extractor.encoder.mlp[0].in_features for m in (model, plain)]
    assert widths[0] - widths[1] == (2 * COLOUR_STATS_DIM if colour_stats else 0)


def test_a_chroma_checkpoint_of_another_histogram_version_is_refused_by_name(tmp_path, pools):
    train_sb3(tiny(tmp_path, algo="a2c", steps=24, eval_every=0, chroma=True), pools=pools)
    meta_path = tmp_path / "run" / "checkpoint.json"
    doc = json.loads(meta_path.read_text())
    assert doc["meta"].pop("chroma_histogram") == 2  # recorded; without it the checkpoint is of version 1
    meta_path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="version 1"):
        train_sb3(tiny(tmp_path, algo="a2c", steps=48, eval_every=0, chroma=True, resume=True), pools=pools)


def test_a_checkpoint_from_before_the_extractor_saw_colour_resumes_only_without_them(tmp_path, pools):
    """Checkpoints without ``extractor_colour`` were written when the extractor ignored ``colour_stats``: resuming
    one with the colour statistics would not fit its weights, so it is refused by name; without them it resumes."""
    train_sb3(tiny(tmp_path, algo="a2c", steps=24, eval_every=0, colour_stats=False), pools=pools)
    meta_path = tmp_path / "run" / "checkpoint.json"
    doc = json.loads(meta_path.read_text())
    assert doc["meta"].pop("extractor_colour") is False
    doc["meta"]["config"]["colour_stats"] = True  # what such a run saved: the option's default, never used
    meta_path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="no-colour-stats"):
        train_sb3(tiny(tmp_path, algo="a2c", steps=48, eval_every=0, resume=True), pools=pools)
    result = train_sb3(tiny(tmp_path, algo="a2c", steps=48, eval_every=0, resume=True, colour_stats=False),
                       pools=pools)
    assert result["steps"] >= 48 and read_meta(tmp_path / "run" / "checkpoint")["extractor_colour"] is False


@pytest.mark.parametrize("algo", ["a2c", "ppo", "sac", "td3"])
def test_trains_and_writes_pickle_free_checkpoints(tmp_path, pools, algo):
    cfg = tiny(tmp_path, algo=algo)
    # a2c goes through the project's entry point and builds its own pools; the others reuse the fixture's
    result = train(cfg) if algo == "a2c" else train_sb3(cfg, pools=pools)
    out = tmp_path / "run"
    assert result["algo"] == algo and result["steps"] >= cfg.steps
    assert all(math.isfinite(result[k]) for k in ("psnr", "delta_e2000", "input_psnr"))
    assert json.loads((out / "eval.json").read_text()) == json.loads(json.dumps(result))
    assert json.loads((out / "config.json").read_text())["algo"] == algo
    doc = json.loads((out / "checkpoint.json").read_text())  # plain JSON ...
    assert doc["meta"]["algo"] == algo and doc["meta"]["num_timesteps"] == result["steps"]
    assert doc["meta"]["config"]["steps"] == cfg.steps
    tensors = saved(out)  # ... and plain safetensors: nothing unpickled anywhere
    assert any(k.startswith("module.policy.") for k in tensors) and any(k.startswith("optim.") for k in tensors)
    assert all(torch.isfinite(v.float()).all() for v in tensors.values())
    assert not list(out.glob("*.zip")) and not list(out.glob("*.pkl"))
    if algo in ("sac", "td3"):
        assert {"actor", "critic"} <= set(doc["optimizer_param_groups"])
        assert any(".critic_target." in k for k in tensors)
    else:
        assert set(doc["optimizer_param_groups"]) == {"policy"}


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_resume_continues_from_the_saved_weights_and_count(tmp_path, pools, monkeypatch, algo):
    first = train_sb3(tiny(tmp_path, algo=algo, steps=200, batch=8, checkpoint_every=0, eval_every=0), pools=pools)
    out = tmp_path / "run"
    before = saved(out)
    assert first["steps"] >= 200
    loaded = {}
    original = sb3.load_sb3_checkpoint

    def spy(model, path, discriminator=None):
        meta = original(model, path, discriminator)
        loaded.update(steps=model.num_timesteps, state=policy_state(model))
        return meta

    monkeypatch.setattr(sb3, "load_sb3_checkpoint", spy)
    second = train_sb3(tiny(tmp_path, algo=algo, steps=400, batch=8, resume=True, checkpoint_every=0, eval_every=0),
                       pools=pools)
    assert loaded["steps"] == first["steps"]
    policy_keys = [k for k in before if k.startswith("module.policy.")]
    assert set(policy_keys) <= set(loaded["state"])
    assert all(torch.equal(loaded["state"][k], before[k]) for k in policy_keys)
    assert 400 <= second["steps"] < 400 + 72  # continued up to the same total (PPO: whole rollouts of 72)
    after = saved(out)
    assert any(not torch.equal(after[k], before[k]) for k in policy_keys)  # and trained on
    if algo == "sac":
        assert "tensor.log_ent_coef" in after


def test_a_resumed_run_evaluates_on_the_same_grid_and_keeps_its_history(tmp_path, pools):
    """Evaluations fall at the first rollout at or past each multiple of eval_every, resumed or not (a resumed run
    counted from where it resumed, and eval.json's history began again); a2c's rollouts are 4 x 3 image-steps."""
    whole = train_sb3(tiny(tmp_path, algo="a2c", steps=120, eval_every=30, checkpoint_every=0,
                           out=str(tmp_path / "whole")), pools=pools)
    assert [h["steps"] for h in whole["history"]] == [36, 60, 96, 120]
    first = train_sb3(tiny(tmp_path, algo="a2c", steps=48, eval_every=30, checkpoint_every=0), pools=pools)
    assert [h["steps"] for h in first["history"]] == [36, 48]
    assert read_meta(tmp_path / "run" / "checkpoint.safetensors")["history"] == first["history"]
    again = train_sb3(tiny(tmp_path, algo="a2c", steps=48, eval_every=30, checkpoint_every=0, resume=True),
                      pools=pools)
    assert again["history"] == first["history"]  # a finished run is not evaluated twice at its last step
    second = train_sb3(tiny(tmp_path, algo="a2c", steps=120, eval_every=30, checkpoint_every=0, resume=True),
                       pools=pools)
    assert [h["steps"] for h in second["history"]] == [36, 48, 60, 96, 120]
    assert second["history"][:2] == first["history"]
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["history"] == second["history"]


def test_tensorboard_logs_when_installed(tmp_path, pools):
    pytest.importorskip("tensorboard")
    train_sb3(tiny(tmp_path, algo="a2c", steps=48, eval_every=24), pools=pools)
    assert list((tmp_path / "run" / "tb").rglob("events.out.tfevents.*"))


def test_resume_without_checkpoint_starts_afresh(tmp_path, pools):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "best.json").write_text("{}")  # left by a run killed before its first checkpoint
    with pytest.warns(UserWarning, match="no checkpoint"):
        result = train_sb3(tiny(tmp_path, algo="a2c", steps=24, resume=True, eval_every=0), pools=pools)
    assert result["steps"] >= 24 and not (tmp_path / "run" / "best.json").exists()


def test_resume_refuses_another_algorithm(tmp_path, pools):
    train_sb3(tiny(tmp_path, algo="a2c", steps=24, eval_every=0), pools=pools)
    with pytest.raises(FileExistsError, match="pass --resume to continue it"):  # a fresh run would replace it
        train_sb3(tiny(tmp_path, algo="a2c", steps=24, eval_every=0), pools=pools)
    with pytest.raises(ValueError, match="a2c"):
        train_sb3(tiny(tmp_path, algo="ppo", steps=48, resume=True), pools=pools)


def test_best_checkpoint_on_the_validation_pool(tmp_path):
    split = build_split_pools(TrainConfig(pool_size=16, eval_size=4, view=VIEW))
    pools3 = (split.train, split.held, split.validation)
    result = train_sb3(tiny(tmp_path, algo="a2c", steps=144, eval_every=24, checkpoint_every=0), pools=pools3)
    first = result["history"][0]  # a fresh run scores "change nothing" first
    assert first["steps"] == 0 and first["psnr"] == first["input_psnr"] and first["validation"]["good_psnr"] == 100
    scores = [h["validation"]["score"] for h in result["history"]]
    assert len(scores) >= 3 and all(s == selection_score(h["validation"]) for s, h in zip(scores, result["history"],
                                                                                           strict=True))
    best_step = result["history"][scores.index(max(scores))]["steps"]
    meta = read_meta(tmp_path / "run" / "best.safetensors")
    assert meta["num_timesteps"] == meta["best"]["step"] == best_step == result["best"]["step"]
    assert json.loads((tmp_path / "run" / "eval.json").read_text()) == json.loads(json.dumps(result))
    # resuming keeps the best so far (here: one nothing can beat)
    doc = json.loads((tmp_path / "run" / "best.json").read_text())
    doc["meta"]["best"]["score"] = 1e9
    (tmp_path / "run" / "best.json").write_text(json.dumps(doc))
    again = train_sb3(tiny(tmp_path, algo="a2c", steps=192, eval_every=24, checkpoint_every=0, resume=True),
                      pools=pools3)
    assert again["best"]["step"] == best_step
    assert read_meta(tmp_path / "run" / "best.safetensors")["best"]["score"] == 1e9
    # ... unless it was scored by the rule before session 30 (no per-view shortfall): then it is scored again
    doc = json.loads((tmp_path / "run" / "best.json").read_text())
    for key in ("good_shortfall", "good_within"):
        del doc["meta"]["best"]["validation"][key]
    (tmp_path / "run" / "best.json").write_text(json.dumps(doc))
    with pytest.warns(DeepExposeWarning, match=rf"scored again .*: 1000000000.00 -> {max(scores):.2f}"):
        third = train_sb3(tiny(tmp_path, algo="a2c", steps=240, eval_every=24, checkpoint_every=0, resume=True),
                          pools=pools3)
    later = [h["validation"]["score"] for h in third["history"]]
    assert third["best"]["score"] == pytest.approx(max([max(scores), *later]))
    # scored again once, and written: resumed with nothing left to train, best.json holds the score of now
    (tmp_path / "run" / "best.json").write_text(json.dumps(doc))
    with pytest.warns(DeepExposeWarning, match="scored again"):
        train_sb3(tiny(tmp_path, algo="a2c", steps=240, eval_every=24, checkpoint_every=0, resume=True), pools=pools3)
    assert "good_shortfall" in read_meta(tmp_path / "run" / "best.safetensors")["best"]["validation"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeepExposeWarning)  # not scored again, or warned of again
        warnings.filterwarnings("ignore", "--resume: the checkpoint .* already at or past", DeepExposeWarning)
        train_sb3(tiny(tmp_path, algo="a2c", steps=240, eval_every=24, checkpoint_every=0, resume=True), pools=pools3)
    # without a validation pool nothing is selected
    plain = train_sb3(tiny(tmp_path, algo="a2c", steps=48, eval_every=24, out=str(tmp_path / "plain")),
                      pools=pools3[:2])
    assert plain["best"] is None and not (tmp_path / "plain" / "best.safetensors").exists()


def test_the_evaluation_at_the_start_is_logged_before_any_update(tmp_path):
    import csv

    from stable_baselines3.common.logger import configure

    split = build_split_pools(TrainConfig(pool_size=16, eval_size=4, view=VIEW))
    model = make_sb3_model(tiny(tmp_path, algo="a2c"), VecMonitor(DeepExposureVecEnv(2, split.train, k=K)),
                           torch.device("cpu"))
    model.set_logger(configure(str(tmp_path / "log"), ["csv"]))
    evals = sb3.EvalCallback(EditCore(k=K), split.held, 0, verbose=False, validation=split.validation, at_start=True)
    model.learn(total_timesteps=8, callback=evals)
    first, = evals.history  # eval_every 0: only the one at the start
    assert first["steps"] == 0 and first["psnr"] == first["input_psnr"] and not evals.at_start
    with open(tmp_path / "log" / "progress.csv") as f:
        row = next(csv.DictReader(f))
    assert float(row["validation/score"]) == pytest.approx(first["validation"]["score"])
    assert float(row["eval/psnr"]) == pytest.approx(first["psnr"])


@pytest.mark.parametrize("algo,reward", [("ppo", "adversarial"), ("sac", "mixed")])
def test_adversarial_rewards_train_their_discriminator_and_resume_it(tmp_path, pools, monkeypatch, algo, reward):
    updates = []
    original_on_step = sb3.DiscriminatorCallback._on_step

    def counting(self):
        result = original_on_step(self)
        updates.append(self.updates)
        return result

    monkeypatch.setattr(sb3.DiscriminatorCallback, "_on_step", counting)
    cfg = tiny(tmp_path, algo=algo, reward=reward, steps=144, batch=8, checkpoint_every=0, eval_every=0)
    result = train_sb3(cfg, pools=pools)
    assert math.isfinite(result["psnr"]) and result["steps"] >= 144
    # 4 environments, episodes of K + 1 = 3 steps: one discriminator step per 8 finished episodes
    assert updates[-1] == result["steps"] // (K + 1) // 8 > 0
    out = tmp_path / "run"
    first = saved(out)
    keys = [k for k in first if k.startswith("module.discriminator.")]
    assert keys and any(k.startswith("optim.discriminator.") for k in first)
    assert "discriminator" in json.loads((out / "checkpoint.json").read_text())["optimizer_param_groups"]
    fresh = Critic().state_dict()
    assert any(not torch.equal(first[f"module.discriminator.{k}"], fresh[k]) for k in fresh)  # it was trained
    loaded = {}
    original_load = sb3.load_sb3_checkpoint

    def spy(model, path, discriminator=None):
        meta = original_load(model, path, discriminator)
        loaded.update({k: v.clone() for k, v in discriminator[0].state_dict().items()})
        return meta

    monkeypatch.setattr(sb3, "load_sb3_checkpoint", spy)
    train_sb3(tiny(tmp_path, algo=algo, reward=reward, steps=240, batch=8, checkpoint_every=0, eval_every=0,
                   resume=True), pools=pools)
    assert all(torch.equal(loaded[k], first[f"module.discriminator.{k}"]) for k in loaded)


def test_discriminator_callback_learns_to_tell_good_views_from_results():
    torch.manual_seed(0)
    bright = torch.full((8, 3, VIEW, VIEW), 200, dtype=torch.uint8)
    good = PairPool(bright, bright)
    critic = Critic(width=8)
    callback = sb3.DiscriminatorCallback((critic, torch.optim.Adam(critic.parameters(), 1e-3)), good, batch=4, seed=0)
    calls = []
    env = SimpleNamespace(env_method=lambda name: calls.append(name))
    callback.model = SimpleNamespace(logger=Logger(folder=None, output_formats=[]), get_env=lambda: env)
    dark = {"image": np.full((3, VIEW, VIEW), 40, np.uint8)}
    for _ in range(60):  # two environments: one finished, one not
        callback.locals = {"dones": np.array([True, False]), "infos": [{"terminal_observation": dark}, {}]}
        callback._on_step()
    assert callback.updates == 15 and callback.results == []
    assert calls == ["rescore"] * 15  # the running episodes are scored again by each new critic
    with torch.no_grad():
        real, fake = critic(good.get([0])[1]), critic(torch.full((1, 3, VIEW, VIEW), 40 / 255))
    assert float(real) > float(fake)


def test_a_wall_clock_budget_stops_the_run_and_keeps_its_results(tmp_path, pools):
    start = time.monotonic()
    result = train_sb3(tiny(tmp_path, algo="a2c", steps=10 ** 9, minutes=0.02, eval_every=0, checkpoint_every=0),
                       pools=pools)
    assert time.monotonic() - start < 60 and 0 < result["steps"] < 10 ** 9
    assert read_meta(tmp_path / "run" / "checkpoint.safetensors")["num_timesteps"] == result["steps"]
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["steps"] == result["steps"]


def test_ppo_minibatches_divide_the_rollout_and_hold_two_or_more_views():
    """21 image-steps (7 environments, episodes of 3) have no divisor of 2: a minibatch of 1 failed in SB3's
    assertion; the next divisor up is taken."""
    for batch, envs, steps, size in ((2, 7, 3, 3), (2, 2, 3, 2), (64, 8, 4, 64), (5, 7, 3, 3)):
        kw = algo_kwargs(TrainConfig(algo="ppo", batch=batch), envs, steps, 16)
        assert kw["batch_size"] == size and kw["n_steps"] * envs % size == 0, (batch, envs, steps)


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_a_time_budget_ends_only_after_the_first_update(tmp_path, pools, algo, monkeypatch):
    """It stopped in the first rollout, before any update, and wrote the starting policy as the trained one."""
    from deepexpose.agents.sb3 import TimeBudgetCallback

    stopped = []  # the number of updates made when the budget stopped the run
    on_step = TimeBudgetCallback._on_step

    def spy(self):
        go_on = on_step(self)
        if not go_on:
            stopped.append(self.model._n_updates)
        return go_on

    monkeypatch.setattr(TimeBudgetCallback, "_on_step", spy)
    result = train_sb3(tiny(tmp_path, algo=algo, steps=10 ** 9, minutes=1e-9, eval_every=0, checkpoint_every=0),
                       pools=pools)
    assert stopped and stopped[0] > 0 and 0 < result["steps"] < 10 ** 9


def test_resume_refuses_other_settings_and_keeps_the_config(tmp_path, pools):
    train_sb3(tiny(tmp_path, algo="a2c", steps=24, eval_every=0), pools=pools)
    config = (tmp_path / "run" / "config.json").read_text()
    with pytest.raises(ValueError, match=r"reward='paired' \(now 'adversarial'\)"):
        train_sb3(tiny(tmp_path, algo="a2c", reward="adversarial", steps=48, eval_every=0, resume=True), pools=pools)
    assert (tmp_path / "run" / "config.json").read_text() == config
