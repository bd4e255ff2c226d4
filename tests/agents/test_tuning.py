"""``deepexpose.agents.tuning``: consensus settings scored on the agent's validation photos only."""

import numpy as np
import pytest
import torch

from deepexpose.agents import tuning
from deepexpose.metrics import capped_psnr, delta_e2000


def test_validation_cases_are_seeded_and_untouched_is_the_photo():
    photos = [torch.rand(3, 24, 32, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    cases = tuning.validation_cases(photos, draws=2, seed=0)
    assert [c for c, _, _ in cases] == ["basic", "basic", "untouched"] * 2
    for case, x, target in cases:
        assert x.dtype == np.uint8 and x.shape == (24, 32, 3)
        assert np.array_equal(x, target) == (case == "untouched")
    again = tuning.validation_cases(photos, draws=2, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(cases, again, strict=True))
    other = tuning.validation_cases(photos, draws=2, seed=1)
    assert not np.array_equal(cases[0][1], other[0][1])


def test_score_cases_of_a_method_that_changes_nothing_is_the_inputs_score():
    from deepexpose.methods import IdentityMethod

    photos = [torch.rand(3, 24, 32, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    cases = tuning.validation_cases(photos, draws=2, seed=0)
    result = tuning.score_cases(IdentityMethod(), cases)
    basic = [(x, t) for c, x, t in cases if c == "basic"]
    assert result["psnr"] == pytest.approx(np.mean([capped_psnr(x, t) for x, t in basic]))
    assert result["delta_e2000"] == pytest.approx(np.mean([delta_e2000(x, t) for x, t in basic]))
    assert result["good_psnr"] == 100.0 and result["score"] == pytest.approx(result["psnr"])


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_grid_is_scored_and_ranked_and_the_carried_setting_chosen(tiny_agent):
    lines = []
    tuned = tuning.tune_consensus(tiny_agent, (0.6, 0.8), (0.0, 1.0), (0.0, 0.01), draws=1, log=lines.append)
    rows = tuned["rows"]
    assert tuned["validation_photos"] >= 1 and len(rows) == 1 + 2 * 2 * 2 and len(lines) == 2 + len(rows)
    assert rows[0]["views"] == "whole photo" and {(r["crop"], r["shrink"], r["untouched_within"])
                                                  for r in rows[1:]} == {
        (c, s, w) for c in (0.6, 0.8) for s in (0.0, 1.0) for w in (0.0, 0.01)}
    for r in rows[1:]:  # a threshold every edit stays within returns every untouched photo bit for bit
        assert r["untouched_within"] == 0.0 or r["good_psnr"] == 100
    for r in rows:
        assert 0 < r["psnr"] <= 100 and 0 < r["good_psnr"] <= 100 and r["delta_e2000"] >= 0
        assert r["score"] == pytest.approx(r["psnr"] - max(0.0, 38.0 - r["good_psnr"]))
    assert tuned["best"] == max(rows, key=lambda r: r["score"])
    carried = [r for r in rows if r["views"] == "consensus" and r["untouched_within"] == 0]
    assert tuned["chosen"] == max(carried, key=lambda r: r["score"])
    assert tuned["setting"] == {"crop": tuned["chosen"]["crop"], "shrink": tuned["chosen"]["shrink"]}


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_a_grid_without_a_carried_setting_chooses_none(tiny_agent):
    tuned = tuning.tune_consensus(tiny_agent, (), (), draws=1, log=lambda line: None)
    assert [r["views"] for r in tuned["rows"]] == ["whole photo"]
    assert tuned["chosen"] is None and tuned["setting"] is None


def test_refuses_no_draws_and_a_run_without_validation_photos(tiny_agent, monkeypatch):
    with pytest.raises(ValueError, match="draws"):
        tuning.tune_consensus(tiny_agent, (0.7,), (1.0,), draws=0)
    monkeypatch.setattr(tuning, "good_photo_split", lambda cfg: ([torch.rand(3, 8, 8)], [], []))
    with pytest.raises(tuning.NoValidationPhotos, match="no validation photos"):
        tuning.tune_consensus(tiny_agent, (0.7,), (1.0,))


def test_grids_are_parsed_checked_and_written_back():
    assert tuning.parse_grid(" 0.5, 1,,2 ", "--x") == [0.5, 1.0, 2.0] and tuning.parse_grid("", "--x") == []
    assert tuning.parse_grid(tuning.grid_text(tuning.GRID_SHRINKS), "--x") == list(tuning.GRID_SHRINKS)
    assert tuning.grid_text((0.5, 1.0)) == "0.5,1"
    assert tuning.parse_consensus_grid("0.6,1", "0,2") == ([0.6, 1.0], [0.0, 2.0])
    with pytest.raises(ValueError, match="--x: could not convert"):
        tuning.parse_grid("0.7;0.8", "--x")
    with pytest.raises(ValueError, match="--c: crop must be in"):
        tuning.parse_consensus_grid("0.7,1.5", "1", crops_name="--c")
    with pytest.raises(ValueError, match="--shrinks: shrink must be finite"):
        tuning.parse_consensus_grid("0.7", "-1")


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_choose_checkpoint_scores_every_kept_policy_on_whole_photos(tmp_path):
    from deepexpose.agents.train import TrainConfig, train
    from deepexpose.methods import AgentMethod

    train(TrainConfig(data="demo", holdout="coffee", steps=64, batch=8, workers=1, pool_size=16, eval_size=4,
                      view=16, k=2, eval_every=32, checkpoint_every=0, validation=0.2, out=str(tmp_path / "run"),
                      progress=False, keep_evaluated=True, lr=3e-3))
    kept = sorted((tmp_path / "run" / "evaluated").glob("*.safetensors"))
    lines = []
    chosen = tuning.choose_checkpoint(kept, (0.7,), (0.5, 1.5), draws=1, log=lines.append)
    rows = chosen["rows"]
    assert [(r["path"], r["crop"], r["shrink"]) for r in rows] == [(str(p), 0.7, s) for p in kept
                                                                  for s in (0.5, 1.5)]
    assert len(kept) == 3 and len(lines) == 1 + len(rows) and all("delta_e2000" not in r for r in rows)
    assert chosen["path"] == max(rows, key=lambda r: r["score"])["path"]
    cases = tuning.validation_cases(tuning.validation_photos(kept[0]), 1, 0)
    assert rows[-1] == {"path": str(kept[-1]), "crop": 0.7, "shrink": 1.5,
                        **tuning.score_cases(AgentMethod(kept[-1], crop=0.7, shrink=1.5), cases, colour=False)}
    basic = [(x, t) for c, x, t in cases if c == "basic"]  # step 0 changes nothing
    assert rows[0]["good_psnr"] == 100 and rows[0]["psnr"] == pytest.approx(
        np.mean([capped_psnr(x, t) for x, t in basic]))
    with pytest.raises(ValueError, match="needs checkpoints"):
        tuning.choose_checkpoint(kept, (), (1.0,))
