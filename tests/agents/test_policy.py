"""The trained agent as a corrector: export, load (exported or training checkpoint), choose edits."""

import dataclasses

import pytest
import torch

from deepexpose.agents.checkpoint import save_checkpoint
from deepexpose.agents.networks import ActorCritic
from deepexpose.agents.policy import KIND, export_agent, load_agent
from deepexpose.agents.train import TrainConfig, actor_critic_act, run_policy
from deepexpose.envs import EditCore


def training_checkpoint(path, algo="adpg"):
    torch.manual_seed(0)
    model = ActorCritic(steps=4, action_dim=16, hidden=32)
    torch.nn.init.normal_(model.actor.weight, std=0.3)
    opt = torch.optim.Adam(model.parameters(), lr=0.0)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # an optimiser with state, as in a real run
    meta = {"step": 123, "config": dataclasses.asdict(TrainConfig(algo=algo)), "model": model.config(),
            "history": [{"step": 123, "psnr": 20.0}]}
    save_checkpoint(path, modules={"policy": model}, optimizers={"policy": opt}, meta=meta)
    return model


def test_export_then_load_gives_the_same_edits(tmp_path):
    model = training_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    views = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    _, expected = run_policy(model, EditCore(k=3, reward=None), views)
    from_run = load_agent(tmp_path / "run")  # a run folder works too
    assert from_run.choose(views) == expected
    exported = export_agent(tmp_path / "run" / "checkpoint.safetensors", tmp_path / "m" / "agent.safetensors")
    small = load_agent(exported)
    assert small.choose(views) == expected
    assert small.meta["kind"] == KIND and small.meta["trained"]["step"] == 123
    assert small.setup() == {"k": 3, "view": 64, "segmentation": "luminosity", "refine_radius": 0,
                             "filters": list(from_run.filters)}
    # no optimiser state in the exported file: it is much smaller than the training checkpoint
    assert exported.stat().st_size < 0.6 * (tmp_path / "run" / "checkpoint.safetensors").stat().st_size
    assert any(abs(v) > 1e-3 for v in expected[0]["exposure"].values())


def test_load_errors(tmp_path):
    training_checkpoint(tmp_path / "sb3.safetensors", algo="ppo")
    with pytest.raises(ValueError, match="only the own trainer"):
        load_agent(tmp_path / "sb3.safetensors")
    save_checkpoint(tmp_path / "other.safetensors", tensors={"x": torch.zeros(1)}, meta={"kind": "something"})
    with pytest.raises(ValueError, match="not a deepexpose agent"):
        load_agent(tmp_path / "other.safetensors")
    with pytest.raises(FileNotFoundError):
        load_agent(tmp_path / "missing.safetensors")
    model = training_checkpoint(tmp_path / "ok.safetensors")
    agent = load_agent(tmp_path / "ok.safetensors")
    with pytest.raises(ValueError, match="views must be"):
        agent.choose(torch.rand(1, 3, 32, 32))
    assert actor_critic_act(model) is not None
