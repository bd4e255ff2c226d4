"""``deepexpose.agents.tuning``: consensus settings scored on the agent's validation photos only."""

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import cached_package
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


def test_validation_cases_keyed_by_name_draw_the_same_error_whatever_photos_are_beside_them():
    photos = [torch.rand(3, 24, 32, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    named = tuning.validation_cases(photos, draws=1, seed=0, keys=["a", "b", "c"])
    alone = tuning.validation_cases(photos[2:], draws=1, seed=0, keys=["c"])
    assert np.array_equal(named[4][1], alone[0][1]) and np.array_equal(named[4][2], alone[0][2])
    by_index = tuning.validation_cases(photos[2:], draws=1, seed=0)  # keyed "validation0": another draw
    assert not np.array_equal(by_index[0][1], alone[0][1])
    assert np.array_equal(tuning.validation_cases(photos, 1, 0)[0][1],
                          tuning.validation_cases(photos, 1, 0, keys=["validation0", "x", "y"])[0][1])
    with pytest.raises(ValueError, match="2 keys for 3 photos"):
        tuning.validation_cases(photos, draws=1, seed=0, keys=["a", "b"])


def _library_agent(agent, folder, cache, packages: str):
    """A copy of ``agent`` in ``folder`` whose config says its run trained on ``packages`` of the photo ``cache``."""
    folder.mkdir(exist_ok=True)
    model = folder / "agent.safetensors"
    shutil.copy(agent, model)
    doc = json.loads(agent.with_suffix(".json").read_text())
    doc["meta"]["config"].update(data="library", root=str(cache), library_packages=packages)
    model.with_suffix(".json").write_text(json.dumps(doc))
    return model


def test_library_validation_photos_come_from_packages_the_run_never_saw(tiny_agent, tmp_path):
    cache = tmp_path / "cache"
    for package, count in (("lxqt-themes", 5), ("scratch", 6), ("tuxpaint-data", 4), ("kphotoalbum", 3)):
        cached_package(cache, package, count)
    model = _library_agent(tiny_agent, tmp_path, cache, "lxqt-themes")
    names, photos = tuning.library_validation_photos(model, ["scratch", "tuxpaint-data", "scratch"])
    assert sorted(names) == sorted([f"scratch/p{i}" for i in range(6)] + [f"tuxpaint-data/p{i}" for i in range(4)])
    assert names != sorted(names) and all(p.shape == (3, 8, 8) for p in photos)  # in a seeded order
    assert torch.equal(photos[names.index("scratch/p3")][:, 0, 0] * 255, torch.tensor([3.0, 21.0, 9.0]))
    records = tuning.validation_records(tuning.run_config(model), ["scratch", "tuxpaint-data"])
    assert [f"{r.package}/{r.name}" for r in records] == names  # what the photos are, before any is opened
    few, _ = tuning.library_validation_photos(model, ["tuxpaint-data", "scratch"], count=3)
    assert few == names[:3]  # a larger count only adds photos
    refusals = {"lxqt-themes": "trained on it or held it out", "mate-backgrounds": "reserved",
                "kphotoalbum": "EXCLUDED_PACKAGES", "no-such-package": "unknown", "endless-sky-data": "not in the "
                "photo cache"}
    for package, why in refusals.items():
        with pytest.raises(ValueError, match=why):
            tuning.library_validation_photos(model, ["scratch", package])
    with pytest.raises(ValueError, match="at least one"):
        tuning.library_validation_photos(model, [" "])
    with pytest.raises(ValueError, match="count"):
        tuning.library_validation_photos(model, ["scratch"], count=0)
    every = _library_agent(tiny_agent, tmp_path / "every", cache, "")  # every cached package but the excluded
    with pytest.raises(ValueError, match="scratch: this model's run trained on it"):
        tuning.library_validation_photos(every, ["scratch"])


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_validation_set_is_the_run_s_photos_and_the_grid_can_be_scored_on_other_cases(tiny_agent):
    own = tuning.validation_set(tiny_agent, draws=2, seed=4)
    expected = tuning.validation_cases(tuning.validation_photos(tiny_agent), 2, 4)
    assert len(own) == len(expected) and all(np.array_equal(a[1], b[1]) for a, b in zip(own, expected))
    with pytest.raises(ValueError, match="draws"):
        tuning.validation_set(tiny_agent, draws=0)
    photos = [torch.rand(3, 24, 32, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    lines = []
    other = tuning.validation_cases(photos, 1, 0)
    tuned = tuning.tune_consensus(tiny_agent, (0.7,), (1.0,), cases=other, log=lines.append)
    assert tuned["validation_photos"] == 3 and lines[0] == "3 validation photos, 6 cases"
    assert tuned["rows"][1] == {"views": "consensus", "crop": 0.7, "shrink": 1.0, "untouched_within": 0.0, "gains": {},
                                **tuning.score_cases(tuning.AgentMethod(tiny_agent, crop=0.7, shrink=1.0), other)}


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_validation_set_adds_library_photos_once_with_an_error_and_once_untouched(tiny_agent, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cached_package(cache, "scratch", 5)
    monkeypatch.setenv("DEEPEXPOSE_PHOTOS", str(cache))
    own = tuning.validation_set(tiny_agent, draws=2, seed=4)
    cases = tuning.validation_set(tiny_agent, draws=2, seed=4, packages=["scratch"], count=3)
    names, photos = tuning.library_validation_photos(tiny_agent, ["scratch"], 3)
    extra = tuning.validation_cases(photos, 1, 4, keys=names)
    assert len(cases) == len(own) + 6 and [c for c, _, _ in cases[len(own):]] == ["basic", "untouched"] * 3
    assert all(np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
               for a, b in zip(cases, own + extra, strict=True))
    assert len(tuning.validation_set(tiny_agent, draws=2, seed=4, packages=["scratch"])) == len(own) + 10
    with pytest.raises(ValueError, match="count needs packages"):
        tuning.validation_set(tiny_agent, count=3)
    with pytest.raises(ValueError, match="reserved"):
        tuning.validation_set(tiny_agent, packages=["mate-backgrounds"])


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
    noted = tuned["best"]["score"] > tuned["chosen"]["score"]  # a note says so (tested below)
    assert tuned["validation_photos"] >= 1 and len(rows) == 1 + 2 * 2 * 2 and len(lines) == 2 + len(rows) + noted
    assert rows[0]["views"] == "whole photo" and {(r["crop"], r["shrink"], r["untouched_within"])
                                                  for r in rows[1:]} == {
        (c, s, w) for c in (0.6, 0.8) for s in (0.0, 1.0) for w in (0.0, 0.01)}
    for r in rows[1:]:  # a threshold every edit stays within returns every untouched photo bit for bit
        assert r["untouched_within"] == 0.0 or r["good_psnr"] == 100
    for r in rows:
        assert 0 < r["psnr"] <= 100 and 0 < r["good_psnr"] <= 100 and r["delta_e2000"] >= 0
        assert r["score"] == pytest.approx(r["psnr"] - r["good_shortfall"])
        assert r["good_shortfall"] >= max(0.0, 38.0 - r["good_psnr"]) - 1e-9  # charged per photo, never less
    assert tuned["best"] == max(rows, key=lambda r: r["score"])
    carried = [r for r in rows if r["views"] == "consensus" and r["untouched_within"] == 0]
    assert tuned["chosen"] == max(carried, key=lambda r: r["score"])
    assert tuned["setting"] == {"crop": tuned["chosen"]["crop"], "shrink": tuned["chosen"]["shrink"]}
    assert all(r["gains"] == {} for r in rows[1:])


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_gains_are_part_of_the_grid_and_of_the_setting_chosen(tiny_agent, monkeypatch):
    lines = []
    gains = [{}, {"white_balance": 0.0}, {"white_balance": 3.0}]
    scores = {None: 20.0, 0.0: 22.0, 3.0: 21.0}  # the row with white balance off scores best here
    monkeypatch.setattr(tuning, "score_cases", lambda method, cases, colour=True: {
        "psnr": scores[method.gains.get("white_balance") if method.consensus else None], "good_psnr": 50.0,
        "good_shortfall": 0.0, "good_within": 1.0,
        "delta_e2000": 5.0, "score": scores[method.gains.get("white_balance") if method.consensus else None]})
    tuned = tuning.tune_consensus(tiny_agent, (0.8,), (1.0,), gains=gains, draws=1, log=lines.append)
    assert [r.get("gains") for r in tuned["rows"]] == [None, *gains]
    assert tuned["setting"] == {"crop": 0.8, "shrink": 1.0, "gains": {"white_balance": 0.0}}
    assert lines[1].split()[-1] == "gains" and lines[2].endswith("20.00")  # the whole-photo view: no gains
    assert lines[3].endswith("  -") and lines[4].endswith("  white_balance=0") and lines[5].endswith("white_balance=3")
    scores[0.0] = scores[3.0] = 19.0  # no gains best: the setting carries none
    assert tuning.tune_consensus(tiny_agent, (0.8,), (1.0,), gains=gains, draws=1, log=lambda line: None)[
        "setting"] == {"crop": 0.8, "shrink": 1.0}
    assert not [line for line in lines if line.startswith("note:")]  # the carried row was the best


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_a_better_row_no_model_can_carry_is_named_beside_the_one_chosen(tiny_agent, monkeypatch):
    """tune_consensus.py --export wrote the best consensus setting without a word when the whole-photo view (or an
    --untouched-within threshold) had scored better (found by review)."""
    scores = {"whole photo": 23.0, 0.0: 21.5, 0.5: 22.0}

    def score(method, cases, colour=True):
        s = scores[method.untouched_within if method.consensus else "whole photo"]
        return {"psnr": s, "good_psnr": 50.0, "good_shortfall": 0.0, "good_within": 1.0, "delta_e2000": 5.0,
                "score": s}

    monkeypatch.setattr(tuning, "score_cases", score)
    lines = []
    tuned = tuning.tune_consensus(tiny_agent, (0.8,), (1.0,), (0.0, 0.5), draws=1, log=lines.append)
    assert tuned["setting"] == {"crop": 0.8, "shrink": 1.0} and tuned["best"]["views"] == "whole photo"
    assert lines[-1] == ("note: the whole-photo view alone scores 23.00, better than the best setting a model can "
                         "carry (crop 0.8, shrink 1.0: 21.50), which is the one chosen; deepexpose enhance "
                         "--single-view chooses on the whole photo alone")
    scores["whole photo"] = 20.0
    lines.clear()
    tuning.tune_consensus(tiny_agent, (0.8,), (1.0,), (0.0, 0.5), draws=1, log=lines.append)
    assert lines[-1] == ("note: --untouched-within 0.5 with crop 0.8, shrink 1.0 scores 22.00, better than the best "
                         "setting a model can carry (crop 0.8, shrink 1.0: 21.50), which is the one chosen; deepexpose "
                         "enhance --untouched-within 0.5 applies that threshold")
    scores["whole photo"] = 21.5  # a tie is not "better"
    scores[0.5] = 20.0
    lines.clear()
    tuning.tune_consensus(tiny_agent, (0.8,), (1.0,), (0.0, 0.5), draws=1, log=lines.append)
    assert not [line for line in lines if line.startswith("note:")]


def test_the_note_on_a_better_row_says_when_its_setting_is_not_the_chosen_one():
    chosen = {"views": "consensus", "crop": 0.7, "shrink": 1.5, "untouched_within": 0.0, "gains": {}, "score": 24.0}
    best = {**chosen, "crop": 0.6, "untouched_within": 1.0, "gains": {"white_balance": 2.0}, "score": 24.5}
    assert tuning.better_row_note(best, chosen) == (
        "note: --untouched-within 1 with crop 0.6, shrink 1.5, gains white_balance=2 scores 24.50, better than the "
        "best setting a model can carry (crop 0.7, shrink 1.5: 24.00), which is the one chosen; deepexpose enhance "
        "--untouched-within 1 applies that threshold (to the chosen setting, not to that row's)")


def test_gains_grids_are_every_combination_checked():
    filters = ("white_balance", "exposure")
    assert tuning.parse_gains_grid("", filters) == [{}]
    assert tuning.parse_gains_grid(" white_balance = 1, 2 ; local_exposure=0.5 ;", filters) == [
        {"white_balance": 1.0, "local_exposure": 0.5}, {"white_balance": 2.0, "local_exposure": 0.5}]
    assert tuning.gains_text({"white_balance": 2.0, "exposure": 0.5}) == "white_balance=2 exposure=0.5"
    assert tuning.gains_text({}) == "-"
    for text, match in (("white_balance", "expected FILTER=G"), ("=2", "expected FILTER=G"),
                        ("saturation=2", "unknown filters"), ("exposure=-1", "exposure must be a finite"),
                        ("exposure=1;exposure=2", "exposure is given twice"), ("exposure=", "no gains given"),
                        ("exposure=x", "could not convert")):
        with pytest.raises(ValueError, match=f"--g: .*{match}"):
            tuning.parse_gains_grid(text, filters, "--g")


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_without_colour_only_the_chosen_row_gets_its_ciede2000(tiny_agent):
    with_colour = tuning.tune_consensus(tiny_agent, (0.6, 0.8), (1.0,), draws=1, log=lambda line: None)
    lines = []
    without = tuning.tune_consensus(tiny_agent, (0.6, 0.8), (1.0,), draws=1, colour=False, log=lines.append)
    assert without["chosen"] == with_colour["chosen"] and without["setting"] == with_colour["setting"]
    assert [r for r in without["rows"] if "delta_e2000" in r] == [without["chosen"]]
    strip = [{k: v for k, v in r.items() if k != "delta_e2000"} for r in with_colour["rows"]]
    assert [{k: v for k, v in r.items() if k != "delta_e2000"} for r in without["rows"]] == strip
    chosen = lines[-1 - (without["best"]["score"] > without["chosen"]["score"])]  # before a note on a better row
    assert chosen.startswith(f"chosen: crop {without['chosen']['crop']}") and lines[3].split()[5] == "-"


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
    few = tuning.choose_checkpoint(kept[-1:], (0.7,), (1.5,), cases=cases[:2], log=lambda line: None)
    assert few["rows"] == [{"path": str(kept[-1]), "crop": 0.7, "shrink": 1.5, **tuning.score_cases(
        AgentMethod(kept[-1], crop=0.7, shrink=1.5), cases[:2], colour=False)}]
    with pytest.raises(ValueError, match="needs checkpoints"):
        tuning.choose_checkpoint(kept, (), (1.0,))
