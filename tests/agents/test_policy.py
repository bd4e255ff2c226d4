"""The trained agent as a corrector: export, load (exported or training checkpoint), choose edits."""

import dataclasses

import pytest
import torch

from deepexpose.agents.checkpoint import save_checkpoint
from deepexpose.agents.networks import ActorCritic, obs_to_float
from deepexpose.agents.policy import (KIND, agent_file, agent_meta, average_policies, consensus_action,
                                     default_model_path, export_agent, load_agent)
from deepexpose.agents.train import TrainConfig, actor_critic_act, run_policy
from deepexpose.video import _numeric_leaves
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


def test_agent_file_is_the_file_a_run_folders_checkpoint_or_the_bundled_model(tmp_path):
    (tmp_path / "run").mkdir()
    assert agent_file(tmp_path / "run") == tmp_path / "run" / "checkpoint.safetensors"
    assert agent_file(str(tmp_path / "x.safetensors")) == tmp_path / "x.safetensors"
    assert agent_file(None) == default_model_path() and agent_file(None).is_file()


def test_load_errors(tmp_path):
    (tmp_path / "empty-run").mkdir()  # a run's folder without its checkpoint
    for missing, named in ((tmp_path / "nothing.safetensors", "nothing.safetensors"),
                           (tmp_path / "empty-run", "empty-run/checkpoint.safetensors")):
        with pytest.raises(FileNotFoundError, match=f"^no agent model at .*{named}$"):
            agent_meta(missing)
    training_checkpoint(tmp_path / "sb3.safetensors", algo="ppo")
    with pytest.raises(ValueError, match="is a ppo checkpoint; only the own trainer"):
        load_agent(tmp_path / "sb3.safetensors")
    for name, kind in (("classifier", "seed001-classifier"), ("cgan", "deepexpose-cgan"),
                       ("histogram", "histogram")):  # a baseline's model given to it (no "model" entry in its meta)
        path = default_model_path().with_name(f"{name}.safetensors")
        with pytest.raises(ValueError) as e:
            load_agent(path)
        assert str(e.value) == (f"{path} is a {kind} model; only the own trainer's (adpg, a3c) agents can be loaded "
                                f"here (deepexpose enhance runs it with --method {name} --model {path}, deepexpose "
                                f"evaluate with --methods {name} --models {name}={path})")
    # what deepexpose train --algo ppo really writes: the algorithm and its config, no "model" entry
    save_checkpoint(tmp_path / "ppo.safetensors", tensors={"x": torch.zeros(1)},
                    meta={"algo": "ppo", "config": {"algo": "ppo"}, "num_timesteps": 8})
    with pytest.raises(ValueError, match="is a ppo checkpoint; only the own trainer.*compare_algorithms"):
        load_agent(tmp_path / "ppo.safetensors")
    save_checkpoint(tmp_path / "other.safetensors", tensors={"x": torch.zeros(1)}, meta={"kind": "something"})
    with pytest.raises(ValueError, match="not a deepexpose agent"):
        load_agent(tmp_path / "other.safetensors")
    with pytest.raises(FileNotFoundError):
        load_agent(tmp_path / "missing.safetensors")
    model = training_checkpoint(tmp_path / "ok.safetensors")
    agent = load_agent(tmp_path / "ok.safetensors")
    with pytest.raises(ValueError, match="views must be"):
        agent.choose(torch.rand(1, 3, 32, 32))
    core = EditCore(k=3, reward=None)
    views = torch.rand(2, 3, 64, 64)
    out, edits = run_policy(actor_critic_act(model), core, views)
    with torch.no_grad():  # the same episode, the model called on each observation by hand
        core.begin(views)
        done = False
        while not done:
            _, done = core.step(model(obs_to_float(core.observation()))[0])
    assert torch.equal(out, core.current) and edits == core.describe()
    assert any(e != 0 for e in edits[0]["local_exposure"]["ev"])  # the model does edit


def test_consensus_action_is_positive_part_james_stein():
    one = torch.tensor([[0.5, 0.2, -0.4, 0.0]])
    assert torch.equal(consensus_action(one), one)  # a single view: its own action
    assert torch.allclose(consensus_action(one.repeat(4, 1)), one)  # views that agree: their action
    two = torch.tensor([[0.6, 0.3], [0.4, -0.3]])
    # column 0: mean 0.5, unbiased variance 0.02 -> 0.5 * (1 - 0.02 / 0.25) = 0.46; column 1: mean 0
    assert torch.allclose(consensus_action(two, shrink=1.0), torch.tensor([[0.46, 0.0]]))
    assert torch.allclose(consensus_action(two, shrink=0.0), torch.tensor([[0.5, 0.0]]))  # the plain mean
    assert torch.allclose(consensus_action(two, shrink=2.0), torch.tensor([[0.42, 0.0]]))
    # a spread larger than the mean: exactly "change nothing"
    assert consensus_action(torch.tensor([[0.2], [0.0]]), shrink=1.0).item() == 0.0
    with pytest.raises(ValueError, match="N x A"):
        consensus_action(torch.zeros(4))
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="shrink"):
            consensus_action(two, shrink=bad)


def leaves(edit):
    return {path: torch.tensor(value, dtype=torch.float64) for path, value in _numeric_leaves(edit)}


def assert_same_edit(a, b, atol=1e-5):
    la, lb = leaves(a), leaves(b)
    assert la.keys() == lb.keys()
    for path in la:
        assert torch.allclose(la[path], lb[path], atol=atol), path


def test_consensus_edit(tmp_path):
    training_checkpoint(tmp_path / "m.safetensors")
    agent = load_agent(tmp_path / "m.safetensors")
    views = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    # identical views: the edit chosen on one of them
    assert_same_edit(agent.consensus(views[:1].repeat(5, 1, 1, 1)), agent.choose(views[:1])[0])
    # views that disagree on everything, shrunk hard: the edit of all-zero actions ("change nothing")
    _, nothing = run_policy(lambda obs: torch.zeros(len(obs["step"]), agent.core.action_dim), agent.core, views)
    assert_same_edit(agent.consensus(views, shrink=1e9), nothing[0])
    # otherwise every view counts: the agreed edit is none of theirs
    agreed = agent.consensus(views[:2], shrink=0.0)
    for own in agent.choose(views[:2]):
        assert any(not torch.allclose(leaves(agreed)[k], v, atol=1e-4) for k, v in leaves(own).items())
    with pytest.raises(ValueError, match="views must be"):
        agent.consensus(torch.rand(2, 3, 32, 32))


def test_consensus_setting_is_the_models_own_or_the_default():
    from deepexpose.agents.policy import CONSENSUS_CROP, CONSENSUS_SHRINK, consensus_setting

    assert consensus_setting({}) == {"crop": CONSENSUS_CROP, "shrink": CONSENSUS_SHRINK}
    assert consensus_setting({"consensus": {"crop": 0.6, "shrink": 0.5}}) == {"crop": 0.6, "shrink": 0.5}
    assert consensus_setting({"consensus": {"shrink": 0}}) == {"crop": CONSENSUS_CROP, "shrink": 0.0}
    for bad, match in (({"crop": 0}, "crop"), ({"crop": 1.2}, "crop"), ({"shrink": -1}, "shrink"),
                       ({"shrink": float("inf")}, "shrink"), ({"crops": 0.5}, "unknown keys"),
                       ({"gains": {"sharpen": 2}}, "unknown filters"), ({"gains": {"exposure": -1}}, "exposure"),
                       ({"gains": {"exposure": True}}, "exposure"), ({"gains": [2]}, "mapping")):
        with pytest.raises(ValueError, match=match):
            consensus_setting({"consensus": bad})
    gains = {"consensus": {"gains": {"white_balance": 2, "local_exposure": 0}}}
    assert consensus_setting(gains)["gains"] == {"white_balance": 2.0, "local_exposure": 0.0}
    assert "gains" not in consensus_setting({"consensus": {"gains": {}}})
    with pytest.raises(ValueError, match="unknown filters"):  # checked against the model's own filters
        consensus_setting({**gains, "filters": ["exposure"]})


def test_gains_scale_the_agreed_actions_of_their_filters(tmp_path):
    training_checkpoint(tmp_path / "m.safetensors")
    agent = load_agent(tmp_path / "m.safetensors")
    views = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    rows = agent.action_gains({"white_balance": 2, "local_exposure": 0.5})
    assert rows.shape == (agent.core.steps, agent.core.action_dim)
    assert torch.all(rows[:agent.k] == 0.5) and torch.equal(rows[agent.k, :2], torch.tensor([2.0, 2.0]))
    assert torch.all(rows[agent.k, 2:] == 1)  # white balance's temperature and tint come first
    plain = agent.consensus(views, shrink=0.0)
    assert agent.consensus(views, shrink=0.0, gains={"white_balance": 1.0}) == plain
    warm = agent.consensus(views, shrink=0.0, gains={"white_balance": 2.0})
    for key in ("temperature", "tint"):  # the last step: the other filters see the same image and stay put
        assert warm["white_balance"][key] == pytest.approx(max(-1.5, min(1.5, 2 * plain["white_balance"][key])),
                                                           abs=1e-5)
    assert {k: v for k, v in warm.items() if k != "white_balance"} == \
        {k: v for k, v in plain.items() if k != "white_balance"}
    still = agent.consensus(views, shrink=0.0, gains={"local_exposure": 0.0, "exposure": 0.0})
    assert still["local_exposure"]["ev"] == [0.0] * agent.k and still["exposure"]["ev"] == 0.0
    assert plain["exposure"]["ev"] != 0.0 and any(plain["local_exposure"]["ev"])


def test_export_records_how_the_checkpoint_was_chosen_and_a_re_export_keeps_it(tmp_path):
    from deepexpose.agents.checkpoint import read_meta

    training_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    plain = read_meta(export_agent(tmp_path / "run", tmp_path / "plain.safetensors"))["trained"]
    assert "chosen" not in plain and plain["step"] == 123
    chosen = {"by": "whole validation photos", "step": 123, "score": 25.5}
    history = [{"step": 123, "psnr": 22.0}, {"step": 456, "psnr": 23.0}]  # the run went on after this checkpoint
    first = export_agent(tmp_path / "run", tmp_path / "a.safetensors",
                         record={"chosen": chosen, "history": history, "best": {"step": 456, "score": 23.0}})
    trained = read_meta(first)["trained"]
    assert (trained["chosen"], trained["history"], trained["best"]) == (chosen, history, {"step": 456, "score": 23.0})
    assert trained["step"] == 123 and trained["config"] == plain["config"]
    again = read_meta(export_agent(first, tmp_path / "b.safetensors", consensus={"crop": 0.6, "shrink": 0.5}))
    assert again["trained"] == trained
    other = read_meta(export_agent(first, tmp_path / "c.safetensors", record={"chosen": {"by": "last checkpoint"}}))
    assert other["trained"]["chosen"] == {"by": "last checkpoint"} and other["trained"]["history"] == history
    assert read_meta(first)["trained"]["chosen"] == chosen  # the source is not changed
    with pytest.raises(ValueError, match="record takes chosen, history, best, not step"):
        export_agent(first, tmp_path / "d.safetensors", record={"step": 1})
    assert not (tmp_path / "d.safetensors").exists()


def test_export_carries_a_consensus_setting_and_never_overwrites_its_input(tmp_path):
    from deepexpose.agents.checkpoint import read_meta

    training_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    plain = export_agent(tmp_path / "run", tmp_path / "plain.safetensors")
    assert "consensus" not in read_meta(plain)
    own = export_agent(plain, tmp_path / "own.safetensors", consensus={"crop": 0.6, "shrink": 0.5})
    meta = read_meta(own)
    assert meta["consensus"] == {"crop": 0.6, "shrink": 0.5}
    assert meta["trained"] == read_meta(plain)["trained"] and meta["trained"]["step"] == 123  # the record is kept
    again = read_meta(export_agent(own, tmp_path / "again.safetensors", note="copy"))
    assert again["consensus"] == {"crop": 0.6, "shrink": 0.5} and again["note"] == "copy"
    views = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    assert load_agent(own).choose(views) == load_agent(tmp_path / "run").choose(views)
    before = own.read_bytes(), own.with_suffix(".json").read_bytes()
    for same in (own, own.with_suffix(".json"), own.with_suffix(""), tmp_path / "x" / ".." / "own.v2"):
        with pytest.raises(ValueError, match="overwrite the model it reads"):
            export_agent(own, same, consensus={"crop": 0.8, "shrink": 1})
    assert (own.read_bytes(), own.with_suffix(".json").read_bytes()) == before
    with pytest.raises(ValueError, match="crop"):
        export_agent(plain, tmp_path / "bad.safetensors", consensus={"crop": 2.0, "shrink": 1})
    assert not (tmp_path / "bad.safetensors").exists()


def _checkpoints(tmp_path, hidden=(32, 32, 32)):
    paths = []
    for i, h in enumerate(hidden):
        torch.manual_seed(i)
        model = ActorCritic(steps=4, action_dim=16, hidden=h)
        torch.nn.init.normal_(model.actor.weight, std=0.3)  # a policy that acts (the actor starts at zero)
        meta = {"step": 100 * i, "config": dataclasses.asdict(TrainConfig()), "model": model.config()}
        paths.append(save_checkpoint(tmp_path / f"step-{i}.safetensors", modules={"policy": model}, meta=meta))
    return paths


def test_average_policies_is_the_mean_of_every_weight(tmp_path):
    paths = _checkpoints(tmp_path)
    out = average_policies(paths, tmp_path / "avg.safetensors")
    states = [load_agent(p).model.state_dict() for p in paths]
    averaged = load_agent(out)
    for key, value in averaged.model.state_dict().items():
        assert torch.allclose(value, sum(s[key] for s in states) / 3, atol=1e-6), key
    assert not torch.equal(averaged.model.actor.weight, load_agent(paths[-1]).model.actor.weight)
    assert averaged.meta["step"] == 200 and averaged.meta["averaged"] == {"paths": [str(p) for p in paths],
                                                                         "steps": [0, 100, 200]}
    one = load_agent(average_policies(paths[1:2], tmp_path / "one.safetensors")).model.state_dict()
    assert all(torch.equal(v, states[1][k]) for k, v in one.items())


def test_average_policies_refuses_other_networks_nothing_and_its_own_inputs(tmp_path):
    paths = _checkpoints(tmp_path, hidden=(32, 48))
    with pytest.raises(ValueError, match="another network"):
        average_policies(paths, tmp_path / "avg.safetensors")
    with pytest.raises(ValueError, match="at least one"):
        average_policies([], tmp_path / "avg.safetensors")
    before = paths[0].read_bytes()
    with pytest.raises(ValueError, match="would overwrite"):
        average_policies(paths[:1], paths[0])
    assert paths[0].read_bytes() == before and not (tmp_path / "avg.safetensors").exists()
