"""The project's asynchronous actor-critic: both actor losses, adversarial reward, N workers, kill and resume."""

import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch
from safetensors.torch import load_file

from deepexpose.agents import async_ac
from deepexpose.agents.async_ac import Monitor, SharedAdam, a3c_loss, adpg_loss, worker_loop
from deepexpose.agents.checkpoint import read_meta
from deepexpose.agents.networks import ActorCritic
from deepexpose.agents.policy import export_agent, load_agent
from deepexpose.agents.train import (TrainConfig, build_split_pools, good_photo_split, make_core, make_model,
                                     selection_score, train)
from deepexpose.envs import EditCore, PairPool
from deepexpose.filters import adjust_exposure


def tiny(tmp_path, **kw):
    base = dict(out=str(tmp_path / "run"), steps=240, workers=1, batch=4, pool_size=16, eval_size=6, view=16, k=2,
                eval_every=120, checkpoint_every=48, progress=False)
    return TrainConfig(**{**base, **kw})


def weights(out, name="checkpoint.safetensors"):
    return {k: v for k, v in load_file(os.path.join(out, name)).items() if k.startswith("module.")}


@pytest.mark.parametrize("algo", ["adpg", "a3c"])
def test_trains_and_writes_everything(tmp_path, algo):
    cfg = tiny(tmp_path, algo=algo)
    result = train(cfg)
    out = tmp_path / "run"
    assert result["steps"] >= 240 and result["algo"] == algo
    assert result["trained_on"] == len(good_photo_split(cfg)[0])  # photos, recorded for reports
    assert all(map(lambda v: v == v, (result["psnr"], result["delta_e2000"])))  # finite, not NaN
    assert json.loads((out / "eval.json").read_text()) == json.loads(json.dumps(result))
    meta = json.loads((out / "checkpoint.json").read_text())["meta"]
    assert meta["step"] == result["steps"] and len(meta["history"]) >= 2
    assert json.loads((out / "config.json").read_text())["algo"] == algo
    # the policy changed from its "change nothing" start
    assert weights(out)["module.policy.actor.weight"].abs().sum() > 0
    assert not (out / async_ac.EVALUATED).exists()  # kept only when asked
    with pytest.raises(FileExistsError, match="resume"):
        train(cfg)


def test_adversarial_reward_trains_the_critic(tmp_path):
    result = train(tiny(tmp_path, reward="adversarial", steps=96))
    w = load_file(str(tmp_path / "run" / "checkpoint.safetensors"))
    assert any(k.startswith("module.critic.") for k in w) and any(k.startswith("optim.critic.") for k in w)
    assert result["steps"] >= 96


@pytest.fixture
def one_thread():
    """Tiny tensors: one thread is several times faster than two fighting over busy cores."""
    from deepexpose.agents.train import torch_threads

    with torch_threads(1):
        yield


def test_adpg_improves_a_simple_task(one_thread):
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


def test_a3c_improves_a_simple_task(one_thread):
    """The same task for the advantage actor-critic: sampled actions, Monte-Carlo returns, a value baseline."""
    torch.manual_seed(0)
    t = torch.rand(32, 3, 16, 16) * 0.5 + 0.1
    q = lambda v: (v * 255).round().to(torch.uint8)  # noqa: E731
    x, tt = PairPool(q(adjust_exposure(t, -1.0)), q(t)).get(range(32))
    core = EditCore(k=1)
    model = ActorCritic(core.steps, core.action_dim, use_cnn=False)
    opt = SharedAdam(model.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)

    def deterministic_return():
        with torch.no_grad():
            return float(-adpg_loss(model, core, x, tt)[0])

    before = deterministic_return()
    for _ in range(200):
        loss, _ = a3c_loss(model, core, x, tt, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert deterministic_return() > max(before, 0.0) + 0.5  # more than 5 dB better


def test_two_worker_processes_train_and_resume(tmp_path):
    result = train(tiny(tmp_path, workers=2, steps=192))
    assert result["steps"] >= 192
    assert read_meta(tmp_path / "run" / "checkpoint.safetensors")["step"] == result["steps"]
    before = weights(tmp_path / "run")
    # several workers save no generator states: a resumed run reseeds them from the step it resumes from
    again = train(tiny(tmp_path, workers=2, steps=384, resume=True))
    assert again["steps"] >= 384 and again["history"][:len(result["history"])] == result["history"]
    assert [h["step"] for h in again["history"][len(result["history"]):]][-1] == again["steps"]
    steps = [h["step"] for h in again["history"]]
    assert steps == sorted(set(steps))  # the final count is evaluated once, after the workers stop
    after = weights(tmp_path / "run")
    assert any(not torch.equal(after[k], before[k]) for k in before)


def start_training(out, *, steps, workers):
    """``deepexpose train`` in a child process on tiny settings, returned once it has saved a checkpoint."""
    cmd = [sys.executable, "-m", "deepexpose.cli", "train", "--out", str(out), "--steps", str(steps), "--workers",
           str(workers), "--batch", "4", "--pool-size", "16", "--eval-size", "6", "--view", "16", "--k", "2",
           "--eval-every", "0", "--checkpoint-every", "48", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (out / "checkpoint.json").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.01)
    return proc


def test_killed_run_resumes_exactly(tmp_path):
    """A run killed with SIGKILL and resumed ends with the same weights as an uninterrupted run."""
    full = tiny(tmp_path, out=str(tmp_path / "full"), steps=600, eval_every=0)
    train(full)
    killed = tmp_path / "killed"
    proc = start_training(killed, steps=600, workers=1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    saved = json.loads((killed / "checkpoint.json").read_text())["meta"]["step"]
    assert 0 < saved < 600
    result = train(tiny(tmp_path, out=str(killed), steps=600, eval_every=0, resume=True))
    assert result["steps"] == train_steps(full)
    a, b = weights(full.out), weights(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _children(pid):
    kids = []
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                with open(f"/proc/{stat}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(stat))
    return kids


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="lists processes through /proc")
def test_sigterm_stops_the_worker_processes_too(tmp_path):
    out = tmp_path / "run"
    proc = start_training(out, steps=100000, workers=2)
    workers = _children(proc.pid)
    assert len(workers) >= 2
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1].decode()
    assert proc.returncode == 143 and "deepexpose train: terminated" in err and "Traceback" not in err
    deadline = time.time() + 20
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)  # no worker left training on its own
    step = json.loads((out / "checkpoint.json").read_text())["meta"]["step"]
    assert step > 0 and f"terminated; --resume continues from the checkpoint of step {step} in {out}" in err


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="lists processes through /proc")
def test_sigkill_of_the_run_stops_its_worker_processes(tmp_path):
    """SIGKILL cannot be handled: the workers themselves notice that their parent is gone."""
    proc = start_training(tmp_path / "run", steps=100000, workers=2)
    workers = _children(proc.pid)
    assert len(workers) >= 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)  # none left training, orphaned, for the rest of the budget


def test_a_worker_whose_parent_is_gone_ends_before_any_update(tmp_path, monkeypatch):
    """Checked before each update too (platforms without PR_SET_PDEATHSIG): no step is taken for a dead parent."""
    cfg = tiny(tmp_path, steps=96)
    model = make_model(cfg, make_core(cfg))
    opt = torch.optim.Adam(model.parameters())
    counter, stats = multiprocessing.Value("q", 0), multiprocessing.Array("d", 2)
    pool = build_split_pools(cfg).train
    parent = os.getppid()
    calls = iter([parent, parent, -1])  # alive at the start, gone after the first update
    monkeypatch.setattr(async_ac.os, "getppid", lambda: next(calls, -1))
    monkeypatch.setattr(async_ac.sys, "platform", "other")  # no prctl: pytest's own process is not to be changed
    worker_loop(0, cfg, model, None, opt, None, counter, stats, pool, math.inf, parent=parent)
    assert stats[1] == 1 and counter.value == cfg.batch * (cfg.k + 1)


def train_steps(cfg):
    return json.loads(open(os.path.join(cfg.out, "eval.json")).read())["steps"]


def test_resume_without_checkpoint_starts_afresh(tmp_path):
    stale = tmp_path / "run" / async_ac.EVALUATED / "step-000000048.safetensors"  # left by a run killed early
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    with pytest.warns(UserWarning, match="no checkpoint in .*, starting afresh"):
        result = train(tiny(tmp_path, steps=24, resume=True, eval_every=0))
    assert result["steps"] == 24 and not stale.parent.exists()
    (tmp_path / "run" / "checkpoint.json").unlink()  # half a checkpoint is reported, never replaced
    with pytest.raises(FileNotFoundError, match="incomplete or missing"):
        train(tiny(tmp_path, steps=48, resume=True, eval_every=0))
    assert (tmp_path / "run" / "checkpoint.safetensors").exists()


def test_resume_refuses_other_settings(tmp_path):
    train(tiny(tmp_path, steps=48))
    with pytest.warns(UserWarning, match=r"at step 48, already at or past --steps 24: nothing is trained"):
        assert train(tiny(tmp_path, steps=24, resume=True))["steps"] == 48  # said, not silent (found by an audit)
    with pytest.raises(ValueError, match="k=2"):
        train(tiny(tmp_path, steps=96, k=3, resume=True))
    with pytest.raises(ValueError, match="lr=0.001 .now 0.01"):  # the optimizer would keep the saved rate
        train(tiny(tmp_path, steps=96, lr=0.01, resume=True))


@pytest.mark.parametrize("algo", ["adpg", "a3c"])
def test_chroma_estimate_trains_and_travels_with_the_model(tmp_path, algo):
    """--chroma: the white-balance network learns in the workers (its zero-initialised last layer moves), is
    saved, exported and loaded, and a resume without it is refused."""
    train(tiny(tmp_path, algo=algo, steps=96, chroma=True))
    out = tmp_path / "run"
    agent = load_agent(out / "checkpoint.safetensors")
    assert agent.model.chroma == [0, 1] and agent.model.encoder.chroma_net.net[-1].weight.abs().sum() > 0
    exported = load_agent(export_agent(out / "checkpoint.safetensors", tmp_path / "agent.safetensors"))
    views = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert exported.choose(views) == agent.choose(views)
    with pytest.raises(ValueError, match="chroma"):
        train(tiny(tmp_path, algo=algo, steps=192, chroma=False, resume=True))
    # a model saved before the histogram's version was recorded read the first version: refused by name
    doc_path = out / "checkpoint.json"
    doc = json.loads(doc_path.read_text())
    assert doc["meta"]["model"].pop("chroma_histogram") == 2
    doc_path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="version 1"):
        load_agent(out / "checkpoint.safetensors")
    with pytest.raises(ValueError, match="version 1"):
        train(tiny(tmp_path, algo=algo, steps=192, chroma=True, resume=True))


def test_worker_processes_need_the_cpu(tmp_path):
    with pytest.raises(ValueError, match="workers 1"):
        train(tiny(tmp_path, workers=2, device="meta"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trains_on_cuda(tmp_path):
    result = train(tiny(tmp_path, device="cuda", steps=96))
    assert result["steps"] >= 96


# -- checkpoint selection on the validation pool -------------------------------------------------------------

def test_keep_evaluated_keeps_the_policy_of_every_evaluation(tmp_path):
    out = tmp_path / "run"
    stale = out / async_ac.EVALUATED / "step-000999999.safetensors"  # left by a run killed before its checkpoint
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    (out / "best.json").write_text("{}")
    with pytest.raises(FileExistsError, match=r"earlier run \(best.json, evaluated\).*--overwrite"):
        train(tiny(tmp_path, steps=144, eval_every=48, keep_evaluated=True))
    train(tiny(tmp_path, steps=144, eval_every=48, keep_evaluated=True, overwrite=True))
    history = read_meta(out / "checkpoint.safetensors")["history"]
    kept = sorted((out / async_ac.EVALUATED).glob("*.safetensors"))
    assert [p.name for p in kept] == [f"step-{h['step']:09d}.safetensors" for h in history] and not stale.exists()
    for path, h in zip(kept, history, strict=True):
        assert read_meta(path)["step"] == h["step"]
        assert all(k.startswith("module.policy.") for k in load_file(str(path)))  # the policy alone, no optimizer
        assert load_agent(path).model.config() == load_agent(out).model.config()
    assert not load_file(str(kept[0]))["module.policy.actor.weight"].any()  # step 0: "change nothing"
    last = weights(out)
    assert all(torch.equal(v, last[k]) for k, v in load_file(str(kept[-1])).items())
    with pytest.raises(ValueError, match="--keep-evaluated needs --algo"):
        train(tiny(tmp_path, algo="ppo", keep_evaluated=True, out=str(tmp_path / "sb3")))


def test_best_checkpoint_is_the_best_validation_score(tmp_path):
    result = train(tiny(tmp_path, steps=288, eval_every=48, lr=3e-3))
    out = tmp_path / "run"
    history = json.loads((out / "checkpoint.json").read_text())["meta"]["history"]
    assert [h["step"] for h in history] == [0, 48, 96, 144, 192, 240, 288]
    # before training the actor changes nothing: the first candidate scores the validation inputs as they are
    first = history[0]
    assert first["psnr"] == first["input_psnr"] and first["validation"]["good_psnr"] == 100.0
    assert first["validation"]["score"] == first["validation"]["input_psnr"]
    scores = [h["validation"]["score"] for h in history]
    assert all(s == selection_score(h["validation"]) for s, h in zip(scores, history, strict=True))
    best_step = history[scores.index(max(scores))]["step"]  # the first of equal scores
    best = read_meta(out / "best.safetensors")
    assert best["step"] == best["best"]["step"] == best_step == history[-1]["best_step"] == result["best"]["step"]
    assert best["best"]["score"] == max(scores) and result["best"]["held_out"]["psnr"] == history[
        scores.index(max(scores))]["psnr"]  # held-out results of the best step, recorded for reporting
    assert json.loads((out / "eval.json").read_text()) == json.loads(json.dumps(result))
    assert "of the training photos" in result["validation_source"] and result["validation"]["score"] == scores[-1]
    if best_step != history[-1]["step"]:
        a, b = weights(out), weights(out, "best.safetensors")
        assert any(not torch.equal(a[k], b[k]) for k in a)
    if best_step == 0:  # training never beat leaving the photos alone: the best is the untrained actor
        assert not weights(out, "best.safetensors")["module.policy.actor.weight"].any()
    # the best exports like any checkpoint and keeps its selection record
    agent = load_agent(export_agent(out / "best.safetensors", tmp_path / "agent.safetensors"))
    assert agent.meta["trained"]["step"] == best_step and agent.meta["trained"]["best"]["score"] == max(scores)


def test_held_out_results_never_choose_the_best(tmp_path, monkeypatch):
    """Validation scores 20, 22, 21 and held-out PSNR 30, 10, 40: the best is the second step."""
    cfg = tiny(tmp_path)
    (tmp_path / "run").mkdir()
    val_pool = PairPool(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    held_pool = PairPool(torch.ones(1, 3, 16, 16, dtype=torch.uint8), torch.ones(1, 3, 16, 16, dtype=torch.uint8))
    answers = {id(val_pool): iter([20.0, 22.0, 21.0]), id(held_pool): iter([30.0, 10.0, 40.0])}
    monkeypatch.setattr(async_ac, "evaluate", lambda model, core, pool, device: {
        "psnr": next(answers[id(pool)]), "delta_e2000": 5.0, "input_psnr": 18.0, "input_delta_e2000": 9.0})
    core = EditCore(k=2)
    model = ActorCritic(core.steps, core.action_dim, use_cnn=False)
    monitor = Monitor(cfg, model, None, SharedAdam(model.parameters(), 1e-3), None, None, held_pool, 0, [],
                      val_pool, None, "test")
    for step in (10, 20, 30):
        monitor.evaluate(step)
    monitor.close()
    assert monitor.best["step"] == 20 and read_meta(tmp_path / "run" / "best.safetensors")["step"] == 20
    assert [h["best_step"] for h in monitor.history] == [10, 20, 20] and monitor.best["held_out"]["psnr"] == 10.0


def test_worker_processes_at_the_budget_are_evaluated_once_after_they_stop(tmp_path, monkeypatch):
    """Polled by the monitor at the final count while processes still update: no evaluation or checkpoint then
    (train_async makes the final ones after them); one in-process worker's hook at that count evaluates."""
    cfg = tiny(tmp_path, steps=240, eval_every=120, checkpoint_every=120)
    (tmp_path / "run").mkdir()
    pool = PairPool(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    monkeypatch.setattr(async_ac, "evaluate", lambda model, core, pool, device: {
        "psnr": 20.0, "delta_e2000": 5.0, "input_psnr": 18.0, "input_delta_e2000": 9.0})
    core = EditCore(k=2)
    model = ActorCritic(core.steps, core.action_dim, use_cnn=False)
    stats = multiprocessing.Array("d", 2)
    monitor = Monitor(cfg, model, None, SharedAdam(model.parameters(), 1e-3), None, stats, pool, 0, [], None, None,
                      "test")
    monitor.tick(120)
    monitor.tick(240)  # several processes: the counter reached the budget, their last updates still running
    assert [h["step"] for h in monitor.history] == [120]
    assert read_meta(tmp_path / "run" / "checkpoint.safetensors")["step"] == 120
    monitor.tick(240, [torch.Generator()])  # one worker in this process: its last update is done
    monitor.close()
    assert [h["step"] for h in monitor.history] == [120, 240]


def test_what_is_kept_is_what_was_scored_while_workers_update_the_policy(tmp_path, monkeypatch):
    """A worker's update arriving during the evaluation changes neither the scored weights nor the kept ones."""
    cfg = tiny(tmp_path, keep_evaluated=True)
    (tmp_path / "run").mkdir()
    pool = PairPool(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    core = EditCore(k=2)
    model = ActorCritic(core.steps, core.action_dim, use_cnn=False)
    scored = []

    def evaluate_while_a_worker_updates(policy, core, pool, device):
        scored.append({k: v.clone() for k, v in policy.state_dict().items()})
        with torch.no_grad():
            model.actor.weight.add_(1.0)  # the shared policy moves on
        return {"psnr": 20.0, "delta_e2000": 5.0, "input_psnr": 18.0, "input_delta_e2000": 9.0}
    monkeypatch.setattr(async_ac, "evaluate", evaluate_while_a_worker_updates)
    monitor = Monitor(cfg, model, None, SharedAdam(model.parameters(), 1e-3), None, None, pool, 0, [], pool, None,
                      "test")
    monitor.evaluate(10)
    monitor.close()
    assert torch.equal(scored[0]["actor.weight"], scored[1]["actor.weight"])  # held-out and validation alike
    for name in ("best.safetensors", f"{async_ac.EVALUATED}/step-000000010.safetensors"):
        kept = load_file(str(tmp_path / "run" / name))
        assert torch.equal(kept["module.policy.actor.weight"], scored[0]["actor.weight"])
    assert not torch.equal(model.actor.weight, scored[0]["actor.weight"])


def test_resume_keeps_the_best_so_far(tmp_path):
    train(tiny(tmp_path, steps=96, eval_every=48))
    best_json = tmp_path / "run" / "best.json"
    doc = json.loads(best_json.read_text())
    first_step = doc["meta"]["step"]
    doc["meta"]["best"]["score"] = 1e9  # nothing after the resume can beat this: best.safetensors must stay
    best_json.write_text(json.dumps(doc))
    result = train(tiny(tmp_path, steps=192, eval_every=48, resume=True))
    assert [h["step"] for h in result["history"]] == [0, 48, 96, 144, 192]  # the history goes on, not from 0 again
    assert result["best"]["step"] == first_step and result["best"]["score"] == 1e9
    assert read_meta(tmp_path / "run" / "best.safetensors")["step"] == first_step
    assert all(h["best_step"] == first_step for h in result["history"][3:])


def test_resume_scores_a_best_of_the_rule_before_session_30_again(tmp_path):
    from deepexpose import DeepExposeWarning

    first = train(tiny(tmp_path, steps=96, eval_every=48))
    best_json = tmp_path / "run" / "best.json"
    doc = json.loads(best_json.read_text())
    step = doc["meta"]["best"]["step"]
    own = next(h["validation"]["score"] for h in first["history"] if h["step"] == step)
    doc["meta"]["best"]["score"] = 1e9  # as the old rule's score might have claimed; no per-view shortfall recorded
    for key in ("good_shortfall", "good_within"):
        del doc["meta"]["best"]["validation"][key]
    best_json.write_text(json.dumps(doc))
    with pytest.warns(DeepExposeWarning, match=rf"step {step}\).* scored again .*: 1000000000.00 -> {own:.2f}"):
        result = train(tiny(tmp_path, steps=192, eval_every=48, resume=True))
    scores = [h["validation"]["score"] for h in result["history"]]
    assert len(scores) == 5 and result["best"]["score"] == pytest.approx(max(scores))
    assert "good_shortfall" in result["best"]["validation"]
    # scored again once, and written: resumed with nothing left to train, best.json holds the score of now
    best_json.write_text(json.dumps(doc))
    with pytest.warns(DeepExposeWarning, match="scored again"):
        train(tiny(tmp_path, steps=192, eval_every=48, resume=True))
    assert "good_shortfall" in read_meta(tmp_path / "run" / "best.safetensors")["best"]["validation"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeepExposeWarning)  # not scored again, or warned of again
        warnings.filterwarnings("ignore", "--resume: the checkpoint .* already at or past", DeepExposeWarning)
        warnings.filterwarnings("ignore", "training on 2 demo photos", DeepExposeWarning)
        train(tiny(tmp_path, steps=192, eval_every=48, resume=True))


def test_no_validation_writes_no_best(tmp_path):
    result = train(tiny(tmp_path, steps=96, eval_every=48, validation=0.0))
    out = tmp_path / "run"
    assert result["steps"] >= 96 and result["best"] is None and "validation" not in result
    assert not (out / "best.safetensors").exists() and not (out / "best.json").exists()
    assert weights(out)["module.policy.actor.weight"].abs().sum() > 0  # trained
    assert all("validation" not in h for h in result["history"]) and result["validation_source"].startswith("none")


def test_a_wall_clock_budget_stops_the_run_and_keeps_its_results(tmp_path):
    start = time.monotonic()
    result = train(tiny(tmp_path, steps=10 ** 9, minutes=0.1, eval_every=0, checkpoint_every=0))  # 6 s
    assert time.monotonic() - start < 60 and 0 < result["steps"] < 10 ** 9
    assert read_meta(tmp_path / "run" / "checkpoint.safetensors")["step"] == result["steps"]
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["steps"] == result["steps"]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_time_budget_ends_only_after_the_first_update(tmp_path, workers):
    """A budget that ended before any update wrote the policy it started from as the trained one (found by a review
    of the API): now the first update is made whatever the clock says."""
    result = train(tiny(tmp_path, steps=10 ** 9, minutes=1e-9, eval_every=0, checkpoint_every=0, workers=workers))
    assert 0 < result["steps"] < 10 ** 9 and read_meta(tmp_path / "run" / "checkpoint.safetensors")["step"] > 0
    if workers == 1:  # a resumed run too makes an update past the step it resumed from
        again = train(tiny(tmp_path, steps=10 ** 9, minutes=1e-9, eval_every=0, checkpoint_every=0, resume=True))
        assert again["steps"] > result["steps"]


def test_the_budget_ends_at_the_first_whole_episode_past_it(tmp_path):
    """Batches of 4 episodes of 3 image-steps: 96 after 8 updates, then 2 episodes (not 4) cover the last 4 steps."""
    result = train(tiny(tmp_path, steps=100, eval_every=0, checkpoint_every=0))
    assert result["steps"] == 102 and read_meta(tmp_path / "run" / "checkpoint.safetensors")["step"] == 102
