"""``scripts/tune_consensus.py``: consensus settings scored on the agent's validation photos only."""


import numpy as np
import pytest
import torch

from conftest import load_script


def test_validation_cases_are_seeded_and_untouched_is_the_photo():
    tune = load_script("tune_consensus.py")
    photos = [torch.rand(3, 24, 32, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    cases = tune.validation_cases(photos, draws=2, seed=0)
    assert [c for c, _, _ in cases] == ["basic", "basic", "untouched"] * 2
    for case, x, target in cases:
        assert x.dtype == np.uint8 and x.shape == (24, 32, 3)
        assert np.array_equal(x, target) == (case == "untouched")
    again = tune.validation_cases(photos, draws=2, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(cases, again, strict=True))
    other = tune.validation_cases(photos, draws=2, seed=1)
    assert not np.array_equal(cases[0][1], other[0][1])


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_grid_is_scored_and_ranked(tiny_agent, run_script):
    report = run_script("tune_consensus.py", ["--model", str(tiny_agent), "--crops", "0.6,0.8", "--shrinks", "0,1",
                                              "--untouched-within", "0,0.01", "--draws", "1"])
    rows = report["rows"]
    assert report["validation_photos"] >= 1 and len(rows) == 1 + 2 * 2 * 2
    assert rows[0]["views"] == "whole photo" and {(r["crop"], r["shrink"], r["untouched_within"])
                                                  for r in rows[1:]} == {
        (c, s, w) for c in (0.6, 0.8) for s in (0.0, 1.0) for w in (0.0, 0.01)}
    for r in rows[1:]:  # a threshold every edit stays within returns every untouched photo bit for bit
        assert r["untouched_within"] == 0.0 or r["good_psnr"] == 100
    for r in rows:
        assert 0 < r["psnr"] <= 100 and 0 < r["good_psnr"] <= 100 and r["delta_e2000"] >= 0
        assert r["score"] == pytest.approx(r["psnr"] - max(0.0, 38.0 - r["good_psnr"]))
    assert report["best"] == max(rows, key=lambda r: r["score"])


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_export_writes_the_best_consensus_setting_into_a_new_model(tiny_agent, run_script, tmp_path):
    from deepexpose.agents.checkpoint import read_meta
    from deepexpose.methods import AgentMethod

    before = tiny_agent.read_bytes(), tiny_agent.with_suffix(".json").read_bytes()
    out = tmp_path / "tuned" / "agent.safetensors"
    report = run_script("tune_consensus.py", ["--model", str(tiny_agent), "--crops", "0.8", "--shrinks", "0,1",
                                              "--untouched-within", "0,0.01", "--draws", "1", "--export", str(out)])
    plain = [r for r in report["rows"] if r["views"] == "consensus" and r["untouched_within"] == 0]
    chosen = max(plain, key=lambda r: r["score"])
    setting = {"crop": chosen["crop"], "shrink": chosen["shrink"]}
    assert report["exported"] == {"path": str(out), "consensus": setting}
    assert read_meta(out)["consensus"] == setting
    assert (AgentMethod(out).crop, AgentMethod(out).shrink) == (setting["crop"], setting["shrink"])
    assert (tiny_agent.read_bytes(), tiny_agent.with_suffix(".json").read_bytes()) == before


@pytest.mark.parametrize("args", [["--export", "x.safetensors"],
                                  ["--model", "m.safetensors", "--untouched-within", "1", "--export", "x.safetensors"]])
def test_export_refuses_what_it_cannot_write(args):
    tune = load_script("tune_consensus.py")
    with pytest.raises(SystemExit, match="--export needs"):
        tune.main(args)


@pytest.mark.parametrize("out", ["{model}", "{run}/checkpoint.json", "{run}/checkpoint",
                                 "{run}/../{name}/checkpoint.v2", "{tmp}/existing.safetensors"])
def test_export_refuses_the_models_own_files_and_existing_ones_before_scoring(tiny_agent, out, monkeypatch, tmp_path):
    tune = load_script("tune_consensus.py")
    run = tiny_agent.parent
    (tmp_path / "existing.json").write_text("{}")  # another model's JSON
    monkeypatch.setattr(tune, "validation_cases", lambda *a: pytest.fail("scored before refusing"))
    before = {p: p.read_bytes() for folder in (run, tmp_path) for p in folder.iterdir() if p.is_file()}
    target = out.format(model=tiny_agent, run=run, name=run.name, tmp=tmp_path)
    with pytest.raises(SystemExit, match="--export: .*(overwrite the model|exists)"):
        tune.main(["--model", str(tiny_agent), "--export", target])
    assert {p: p.read_bytes() for folder in (run, tmp_path) for p in folder.iterdir() if p.is_file()} == before
