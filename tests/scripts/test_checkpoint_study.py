"""``scripts/checkpoint_study.py``: kept policies and their averages scored on own and extra validation photos."""

import json

import numpy as np
import pytest

from conftest import cached_package, load_script

study = load_script("checkpoint_study.py")


def test_per_photo_groups_each_photo_s_errors_with_it_untouched():
    cases = [["basic", 20.0], ["basic", 22.0], ["untouched", 50.0], ["basic", 30.0], ["untouched", 36.0]]
    assert study.per_photo(cases) == [([20.0, 22.0], 50.0), ([30.0], 36.0)]
    with pytest.raises(ValueError, match="no untouched case"):
        study.per_photo(cases + [["basic", 1.0]])


def test_set_score_is_the_selection_score_of_the_photos_chosen():
    photos = [([20.0, 22.0], 50.0), ([30.0], 30.0)]
    # untouched 40 dB on average, but the second photo 8 dB short of 38: charged per photo, 8 / 2
    assert study.set_score(photos) == pytest.approx(24.0 - 4.0)
    assert study.set_score(photos, [1]) == pytest.approx(30.0 - 8.0)
    assert study.set_score(photos, [0]) == pytest.approx(21.0)
    with pytest.raises(ValueError, match="no photos"):
        study.set_score(photos, [])


def test_regrets_of_a_clear_winner_a_loser_and_choosing_on_photos():
    n = 40
    good = [([25.0], 50.0)] * n
    bad = [([20.0], 50.0)] * n
    noisy = [([25.0 + (5 if i % 2 else -5)], 50.0) for i in range(n)]  # as good on average, not on every split
    extra = {"good": good, "bad": bad, "noisy": noisy}
    r = study.regrets(extra, ["good", "bad"], {"winner": "good", "loser": "bad"}, k=10, splits=20)
    assert r == {"chosen on k": 0.0, "winner": 0.0, "loser": 5.0}
    r = study.regrets(extra, ["good", "noisy"], {"noisy": "noisy"}, k=10, splits=50)
    assert r["chosen on k"] >= 0 and r["noisy"] >= 0 and r["chosen on k"] > 0  # a noisy pick sometimes loses
    with pytest.raises(ValueError, match="cannot choose on 40"):
        study.regrets(extra, ["good"], {}, k=n)


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_a_run_s_kept_policies_and_averages_are_scored_and_reported(tmp_path, monkeypatch, capsys):
    from deepexpose.agents.train import TrainConfig, train
    from deepexpose.agents.tuning import library_validation_photos, validation_cases

    run = tmp_path / "run"
    train(TrainConfig(data="demo", holdout="coffee", steps=64, batch=8, workers=1, pool_size=16, eval_size=4,
                      view=16, k=2, eval_every=32, checkpoint_every=0, validation=0.2, out=str(run),
                      progress=False, keep_evaluated=True, lr=3e-3))
    cache = tmp_path / "cache"
    cached_package(cache, "scratch", 6)
    monkeypatch.setenv("DEEPEXPOSE_PHOTOS", str(cache))
    out = tmp_path / "study" / "r.json"
    args = [str(run), "--packages", "scratch", "--average", "2", "--subsets", "3", "--out", str(out)]
    assert study.main(args) == 0
    text = capsys.readouterr().out
    written = json.loads(out.read_text())
    assert written["packages"] == ["scratch"] and written["paths"] == {"run": str(run.resolve())}
    results = written["runs"]["run"]
    kept = sorted((run / "evaluated").glob("step-*.safetensors"))
    assert list(results) == [p.stem for p in kept] + ["average of last 2"]
    assert (tmp_path / "study" / "r-averages" / "run-last2.safetensors").is_file()
    names, photos = library_validation_photos(kept[0], ["scratch"])
    cases = validation_cases(photos, 1, 0, keys=names)
    assert results[kept[-1].stem]["extra"] == study.score_policy(kept[-1], cases)
    assert [c for c, _ in results[kept[0].stem]["own"]] == ["basic"] * 3 + ["untouched"]  # 3 errors, 1 photo
    assert np.all(np.array([v for _, v in results[kept[0].stem]["extra"][1::2]]) == 100.0)  # step 0 changes nothing
    assert "## run: 3 kept policies, 1 own validation photos, 6 extra photos" in text and "| 3 |" in text
    assert "(the recipe picks it)" in text and "average of last 2" in text
    before = out.read_bytes()
    assert study.main(args) == 0 and out.read_bytes() == before  # a rerun scores nothing again
    assert "run/" not in capsys.readouterr().out  # no "run/step-...: N s" line
    with pytest.raises(SystemExit, match="kept only 3"):
        study.main([str(run), "--packages", "scratch", "--average", "4", "--out", str(out)])
    with pytest.raises(SystemExit, match="at least 2"):
        study.main([str(run), "--average", "1", "--out", str(out)])
    with pytest.raises(SystemExit, match="--subsets: whole"):
        study.main([str(run), "--subsets", "2.5", "--out", str(out)])
    monkeypatch.setattr(study, "score_policy", lambda *a: pytest.fail("scored before refusing"))
    with pytest.raises(SystemExit, match="--subsets: cannot choose on 6 of 6"):  # before the scoring, not after
        study.main([str(run), "--packages", "scratch", "--average", "2", "--subsets", "6", "--out", str(out)])
    cached_package(cache, "tuxpaint-data", 4)
    with pytest.raises(SystemExit, match="holds scores on the photos of --packages scratch: .* --overwrite"):
        study.main([str(run), "--packages", "tuxpaint-data", "--average", "", "--subsets", "2", "--out", str(out)])
    moved = tmp_path / "x" / "run"  # the same run moved elsewhere: its scores are reused
    (moved / "evaluated").mkdir(parents=True)
    for p in (run / "evaluated").iterdir():
        (moved / "evaluated" / p.name).write_bytes(p.read_bytes())
    assert study.main([str(moved), "--packages", "scratch,scratch", *args[3:]]) == 0  # the packages as a set
    (moved / "evaluated" / kept[0].name).rename(moved / "evaluated" / "step-00000999.safetensors")
    with pytest.raises(SystemExit, match="holds scores of another run named run .*kept step-"):
        study.main([str(moved), *args[1:]])
    old = tmp_path / "old.json"  # the format before this session: runs and candidates only
    old.write_text(json.dumps({"run": written["runs"]["run"]}))
    with pytest.raises(SystemExit, match="written by an earlier version of this script, .* --overwrite"):
        study.main([*args[:-1], str(old)])
    junk = tmp_path / "junk.json"
    for text in ("not json", "[1, 2]"):
        junk.write_text(text)
        with pytest.raises(SystemExit, match="--out .*junk.json (cannot be read as|is not a file of) this study"):
            study.main([*args[:-1], str(junk)])
    assert junk.read_text() == "[1, 2]"
    with pytest.raises(SystemExit, match="different names"):
        study.main([str(run), str(tmp_path / "x" / "run"), "--out", str(out)])
    monkeypatch.undo()
    with pytest.raises(SystemExit, match="no kept policies"):
        study.main([str(tmp_path / "cache"), "--out", str(out)])
    with pytest.raises(SystemExit, match="reserved"):
        study.main([str(run), "--packages", "mate-backgrounds", "--average", "", "--out", str(tmp_path / "x.json")])
