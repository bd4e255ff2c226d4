"""``scripts/generalisation_gap.py``: the same errors on an agent's training, validation and held-out photos."""

from pathlib import Path

import pytest


SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "generalisation_gap.py"


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_scores_each_part_of_the_runs_own_split(tiny_agent, run_script):
    report = run_script("generalisation_gap.py", ["--model", str(tiny_agent), "--count", "12", "--by-error"])
    assert report["data"] == "demo" and report["views"] == 12
    # the demo split: coffee held out; of the other five photos one scene group validates
    assert report["held_out"]["photos"] == 1 and report["train"]["photos"] + report["validation"]["photos"] == 5
    for part in ("train", "validation", "held_out"):
        r = report[part]
        assert 0 < r["input_psnr"] < 100 and 0 < r["psnr"] < 100 and r["delta_e2000"] >= 0
    by_error = report["held_out_by_error"]
    assert set(by_error) == {"white_balance.temperature", "white_balance.tint", "exposure.ev", "contrast.amount",
                             "saturation.factor"}
    for r in by_error.values():  # views the error left unchanged in 8 bits are dropped: every input is off
        assert 0 < r["views"] <= 12 and r["input_delta_e2000"] > 0 and r["input_psnr"] < 100


def test_one_error_pool_changes_exactly_one_thing():
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("generalisation_gap", SCRIPT)
    gap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gap)
    photos = [torch.rand(3, 40, 48, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    pool = gap.one_error_pool(photos, 6, 16, ("exposure", "ev", 0.5, 1.0), seed=0)
    x, t = pool.get(range(len(pool)))
    assert len(pool) == 6 and (x.mean(dim=(1, 2, 3)) > t.mean(dim=(1, 2, 3))).all()  # brighter, every one
    again = gap.one_error_pool(photos, 6, 16, ("exposure", "ev", 0.5, 1.0), seed=0)
    assert torch.equal(again.inputs, pool.inputs)


def test_verdict_calls_an_unchanged_result_unchanged():
    from conftest import load_script

    gap = load_script("generalisation_gap.py")
    assert gap.verdict({"delta_e2000": 3.9, "input_delta_e2000": 3.9}) == "unchanged"  # it said WORSE
    assert gap.verdict({"delta_e2000": 3.0, "input_delta_e2000": 3.9}) == "better"
    assert gap.verdict({"delta_e2000": 4.0, "input_delta_e2000": 3.9}) == "WORSE"


def test_a_count_below_one_is_refused(monkeypatch):
    from conftest import load_script

    monkeypatch.setattr("sys.argv", ["generalisation_gap.py", "--count", "0"])
    with pytest.raises(SystemExit) as e:  # it ended in torch.cat() of an empty list
        load_script("generalisation_gap.py").main()
    assert e.value.code == 2
