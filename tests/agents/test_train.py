"""Data plumbing and evaluation of ``deepexpose train``."""

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from deepexpose.agents.networks import ActorCritic
from deepexpose.agents.train import TrainConfig, actor_critic_act, build_pools, evaluate, run_policy, train
from deepexpose.data.packages import MANIFEST
from deepexpose.envs import EditCore, PairPool


def photo(path, seed, size=(40, 56)):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def fake_library(root, n=10, package="pkg"):
    entries = []
    for i in range(n):
        p = photo(root / package / f"p{i}.png", i)
        entries.append({"file": p.name, "name": f"p{i}", "licence": "CC0-1.0", "credit": "test",
                        "group": f"{package}:g{i}", "sha256": hashlib.sha256(p.read_bytes()).hexdigest()})
    (root / package / MANIFEST).write_text(json.dumps({"package": package, "photos": entries}))


def test_demo_pools_keep_the_holdout_photos_apart():
    train_pool, eval_pool = build_pools(TrainConfig(pool_size=8, eval_size=4, view=16, holdout="coffee"))
    assert len(train_pool) == 8 and len(eval_pool) == 4 and train_pool.size == 16 and eval_pool.paired


def test_library_pools(tmp_path):
    fake_library(tmp_path / "lib")
    cfg = TrainConfig(data="library", root=str(tmp_path / "lib"), pool_size=12, eval_size=6, view=16)
    train_pool, eval_pool = build_pools(cfg)
    assert len(train_pool) == 12 and len(eval_pool) == 6
    with pytest.raises(ValueError, match="get_photos"):
        build_pools(TrainConfig(data="library", root=str(tmp_path / "empty")))


def test_library_packages_choose_what_is_used(tmp_path):
    from deepexpose.agents.train import good_photos

    fake_library(tmp_path / "lib", n=10, package="a")
    fake_library(tmp_path / "lib", n=5, package="b")
    count = {}
    for packages in ("", "a", "b"):
        train, held = good_photos(TrainConfig(data="library", root=str(tmp_path / "lib"), holdout="coffee",
                                              library_packages=packages))
        count[packages] = len(train) + len(held)
    assert count[""] - count["a"] == 5 and count[""] - count["b"] == 10
    with pytest.raises(ValueError, match="no photos of c"):
        good_photos(TrainConfig(data="library", root=str(tmp_path / "lib"), library_packages="c"))


def test_folder_and_pairs_pools(tmp_path):
    for i in range(4):
        photo(tmp_path / "good" / f"{i}.png", i)
        photo(tmp_path / "pairs" / "input" / f"{i}.png", i)
        photo(tmp_path / "pairs" / "target" / f"{i}.png", i + 10)
    train_pool, eval_pool = build_pools(TrainConfig(data="folder", root=str(tmp_path / "good"), pool_size=6,
                                                    eval_size=3, view=16))
    assert len(train_pool) == 6 and len(eval_pool) == 3
    train_pool, eval_pool = build_pools(TrainConfig(data="pairs", root=str(tmp_path / "pairs"), view=16))
    assert len(train_pool) == 3 and len(eval_pool) == 1
    x, t = eval_pool.get([0])
    assert not torch.equal(x, t)  # inputs and targets are different photos here
    with pytest.raises(ValueError, match="--data"):
        build_pools(TrainConfig(data="nope"))
    with pytest.raises(ValueError, match="algo"):
        train(TrainConfig(algo="dqn"))


def test_evaluate_splits_detuned_and_good_views():
    t = torch.rand(4, 3, 16, 16)
    q = lambda v: (v * 255).round().to(torch.uint8)  # noqa: E731
    x = t.clone()
    x[:2] = x[:2] * 0.5
    pool = PairPool(q(x), q(t), [{"class": "mixed"}, {"class": "mixed"}, {"class": "correct"}, {"class": "correct"}])
    core = EditCore(k=1)
    model = ActorCritic(core.steps, core.action_dim, use_cnn=False)  # starts at "change nothing"
    result = evaluate(model, core, pool)
    assert result["good_psnr"] == 100.0  # untouched views come back exactly
    assert result["psnr"] == pytest.approx(result["input_psnr"]) and result["delta_e2000"] > 0
    brighten = lambda obs: torch.full((obs["image"].shape[0], core.action_dim), 0.0).index_fill_(  # noqa: E731
        1, torch.tensor([2]), 0.3)
    result2 = evaluate(brighten, core, pool)
    assert result2["good_psnr"] < 40 and result2["psnr"] != result["psnr"]


def test_run_policy_returns_images_and_edits():
    core = EditCore(k=2, reward=None)  # inference: no targets, nothing scored
    model = ActorCritic(core.steps, core.action_dim, use_cnn=False)
    x = torch.rand(3, 3, 16, 16)
    out, edits = run_policy(actor_critic_act(model), core, x)
    assert torch.equal(out, x) and len(edits) == 3 and edits[0]["local_exposure"]["ev"] == [0.0, 0.0]


def test_good_photos_demo_split_and_bad_data():
    from deepexpose.agents.train import good_photos
    from deepexpose.data.demo import DemoSet

    train, held = good_photos(TrainConfig(data="demo", holdout="coffee"))
    assert len(held) == len(DemoSet(split="holdout", holdout=("coffee",))) >= 1
    assert len(train) == len(DemoSet(split="train", holdout=("coffee",))) >= 1
    assert all(p.ndim == 3 and p.shape[0] == 3 and min(p.shape[1:]) <= 512 for p in train + held)
    with pytest.raises(ValueError, match="no good photos"):
        good_photos(TrainConfig(data="pairs"))


def test_fivek_pools_pair_views_as_they_are_read(tmp_path, monkeypatch):
    import deepexpose.agents.train as tr

    root = tmp_path / "fivek"
    ids = [f"a{i:04d}" for i in range(1, 7)]
    for i, ident in enumerate(ids):  # the 480p layout, a distinct grey per image: input 20 + 30 i, expert +10
        for folder, value in (("input", 20 + 30 * i), ("expertC", 30 + 30 * i)):
            (root / folder / "JPG" / "480p").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((12, 16, 3), value, np.uint8)).save(root / folder / "JPG" / "480p" / f"{ident}.jpg")
    (root / "train_input.txt").write_text("a0001\na0002\n")
    (root / "train_label.txt").write_text("a0003\na0004\n")
    (root / "test.txt").write_text("a0005\na0006\n")
    made = []
    real = tr.view_pairs
    monkeypatch.setattr(tr, "view_pairs", lambda ds, size, idx: made.append(list(idx)) or real(ds, size, idx))
    train_pool, eval_pool = build_pools(TrainConfig(data="fivek", root=str(root), view=8, eval_size=1))
    assert len(train_pool) == 4 and len(eval_pool) == 1 and made == [[0, 1, 2, 3], [0]]  # only eval_size read
    x, t = eval_pool.get([0])
    assert abs(float(x.mean()) * 255 - 140) < 3 and abs(float(t.mean()) * 255 - 150) < 3  # a0005, paired
