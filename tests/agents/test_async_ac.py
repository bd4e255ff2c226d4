"""The project's asynchronous actor-critic: both actor losses, adversarial reward, N workers, kill and resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from deepexpose.agents.async_ac import SharedAdam, adpg_loss
from deepexpose.agents.networks import ActorCritic
from deepexpose.agents.train import TrainConfig, train
from deepexpose.envs import EditCore, PairPool
from deepexpose.filters import adjust_exposure


def tiny(tmp_path, **kw):
    base = dict(out=str(tmp_path / "run"), steps=240, workers=1, batch=4, pool_size=16, eval_size=6, view=16, k=2,
                eval_every=120, checkpoint_every=48, progress=False)
    return TrainConfig(**{**base, **kw})


def weights(out):
    return {k: v for k, v in load_file(os.path.join(out, "checkpoint.safetensors")).items()
            if k.startswith("module.")}


@pytest.mark.parametrize("algo", ["adpg", "a3c"])
def test_trains_and_writes_everything(tmp_path, algo):
    cfg = tiny(tmp_path, algo=algo)
    result = train(cfg)
    out = tmp_path / "run"
    assert result["steps"] >= 240 and result["algo"] == algo
    assert all(map(lambda v: v == v, (result["psnr"], result["delta_e2000"])))  # finite, not NaN
    assert json.loads((out / "eval.json").read_text()) == json.loads(json.dumps(result))
    meta = json.loads((out / "checkpoint.json").read_text())["meta"]
    assert meta["step"] == result["steps"] and len(meta["history"]) >= 2
    assert json.loads((out / "config.json").read_text())["algo"] == algo
    # the policy changed from its "change nothing" start
    assert weights(out)["module.policy.actor.weight"].abs().sum() > 0
    with pytest.raises(FileExistsError, match="resume"):
        train(cfg)


def test_adversarial_reward_trains_the_critic(tmp_path):
    result = train(tiny(tmp_path, reward="adversarial", steps=96))
    w = load_file(str(tmp_path / "run" / "checkpoint.safetensors"))
    assert any(k.startswith("module.critic.") for k in w) and any(k.startswith("optim.critic.") for k in w)
    assert result["steps"] >= 96


def test_adpg_improves_a_simple_task():
    """Targets one stop brighter than the inputs: deterministic policy gradient learns to add exposure."""
    torch.manual_seed(0)
    t = torch.rand(32, 3, 16, 16) * 0.5 + 0.1
    q = lambda v: (v * 255).round().to(torch.uint8)  # noqa: E731
    pool = PairPool(q(adjust_exposure(t, -1.0)), q(t))
    core = EditCore(k=1)
    model = ActorCritic(core.steps, core.action_dim, use_cnn=False)
    opt = SharedAdam(model.parameters(), 3e-3)
    x, tt = pool.get(range(32))
    first, _ = adpg_loss(model, core, x, tt)
    for _ in range(60):
        loss, ret = adpg_loss(model, core, x, tt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss < first - 0.5 and ret > 0.5  # more than 5 dB better


def test_two_worker_processes(tmp_path):
    result = train(tiny(tmp_path, workers=2, steps=192))
    assert result["steps"] >= 192
    assert (tmp_path / "run" / "checkpoint.json").is_file()


def test_killed_run_resumes_exactly(tmp_path):
    """A run killed with SIGKILL and resumed ends with the same weights as an uninterrupted run."""
    full = tiny(tmp_path, out=str(tmp_path / "full"), steps=600, eval_every=0)
    train(full)
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "deepexpose.cli", "train", "--out", str(killed), "--steps", "600", "--workers", "1",
           "--batch", "4", "--pool-size", "16", "--eval-size", "6", "--view", "16", "--k", "2", "--eval-every", "0",
           "--checkpoint-every", "48", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (killed / "checkpoint.json").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    saved = json.loads((killed / "checkpoint.json").read_text())["meta"]["step"]
    assert 0 < saved < 600
    result = train(tiny(tmp_path, out=str(killed), steps=600, eval_every=0, resume=True))
    assert result["steps"] == train_steps(full)
    a, b = weights(full.out), weights(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def train_steps(cfg):
    return json.loads(open(os.path.join(cfg.out, "eval.json")).read())["steps"]


def test_resume_refuses_other_settings(tmp_path):
    train(tiny(tmp_path, steps=48))
    with pytest.raises(ValueError, match="k=2"):
        train(tiny(tmp_path, steps=96, k=3, resume=True))


def test_worker_processes_need_the_cpu(tmp_path):
    with pytest.raises(ValueError, match="workers 1"):
        train(tiny(tmp_path, workers=2, device="meta"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trains_on_cuda(tmp_path):
    result = train(tiny(tmp_path, device="cuda", steps=96))
    assert result["steps"] >= 96
