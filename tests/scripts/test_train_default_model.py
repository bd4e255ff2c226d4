"""``scripts/train_default_model.py``: the bundled agent's recipe, training replaced by the tiny agent's run."""

from pathlib import Path

import pytest

from conftest import load_script


@pytest.fixture
def recipe(tiny_agent, monkeypatch):
    """The script with ``train`` returning the tiny agent's finished run (no best checkpoint) and any package
    list accepted; ``recipe.configs`` collects the configs it trained with."""
    script = load_script("train_default_model.py")
    script.configs = []

    def train(cfg):
        script.configs.append(cfg)
        return {"steps": 64, "psnr": 20.0, "best": None}
    monkeypatch.setattr(script, "train", train)
    monkeypatch.setattr(script, "chosen_packages", lambda value: value.split(","))
    return script


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_exports_the_checkpoint_with_the_consensus_setting_chosen_on_validation(recipe, tiny_agent, tmp_path,
                                                                                 capsys):
    from deepexpose.agents.checkpoint import read_meta
    from deepexpose.agents.tuning import tune_consensus

    run = tiny_agent.parent
    assert recipe.main(["--overwrite", "--out", str(run), "--model-dir", str(tmp_path), "--consensus-crops", "0.6,0.8",
                        "--consensus-shrinks", "0,1", "--minutes", "0.5", "--no-choose-on-photos"]) == 0
    cfg, = recipe.configs
    assert (cfg.chroma, cfg.keep_evaluated, cfg.minutes, cfg.out, cfg.algo) == (True, False, 0.5, str(run), "adpg")
    meta = read_meta(tmp_path / "agent.safetensors")
    expected = tune_consensus(tiny_agent, (0.6, 0.8), (0.0, 1.0), draws=3, log=lambda line: None)["setting"]
    assert meta["consensus"] == expected and "consensus setting chosen" in meta["note"]
    assert meta["trained"]["step"] == read_meta(tiny_agent)["step"]
    assert meta["trained"]["chosen"] == {"by": recipe.CHOSEN_LAST, "step": 64}
    report = capsys.readouterr().out
    assert '"consensus": {' in report and "exporting the last checkpoint" in report


def test_chroma_and_choosing_on_photos_by_default_and_each_can_be_turned_off(recipe, tiny_agent, tmp_path):
    assert recipe.main(["--overwrite", "--out", str(tiny_agent.parent), "--model-dir", str(tmp_path / "a"),
                        "--consensus-crops", "", "--consensus-shrinks", ""]) == 0
    assert recipe.main(["--overwrite", "--out", str(tiny_agent.parent), "--model-dir", str(tmp_path / "b"),
                        "--no-chroma", "--no-choose-on-photos", "--consensus-crops", "",
                        "--consensus-shrinks", ""]) == 0
    assert [(c.chroma, c.keep_evaluated) for c in recipe.configs] == [(True, True), (False, False)]


def test_no_tuning_with_an_empty_grid(recipe, tiny_agent, tmp_path):
    from deepexpose.agents.checkpoint import read_meta

    assert recipe.main(["--overwrite", "--out", str(tiny_agent.parent), "--model-dir", str(tmp_path),
                        "--consensus-crops", "", "--consensus-shrinks", ""]) == 0
    meta = read_meta(tmp_path / "agent.safetensors")
    assert "consensus" not in meta and "consensus setting" not in meta["note"]


@pytest.mark.parametrize("grid,message", [(["--consensus-crops", "0.7", "--consensus-shrinks", ""], "give both"),
                                          (["--consensus-crops", ""], "give both"),
                                          (["--consensus-crops", "1.5"], "--consensus-crops: crop must be"),
                                          (["--consensus-shrinks", "1;2"], "--consensus-shrinks: could not")])
def test_a_bad_grid_is_refused_before_training(recipe, tmp_path, grid, message):
    with pytest.raises(SystemExit, match=message):
        recipe.main(["--model-dir", str(tmp_path), *grid])
    assert recipe.configs == []


def test_a_run_without_validation_photos_keeps_the_default_setting(recipe, tiny_agent, tmp_path, monkeypatch,
                                                                    capsys):
    from deepexpose.agents.checkpoint import read_meta
    from deepexpose.agents.tuning import NoValidationPhotos

    def no_photos(*args, **kwargs):
        raise NoValidationPhotos("this agent's run kept no validation photos: nothing to tune on")
    monkeypatch.setattr(recipe, "tune_consensus", no_photos)
    assert recipe.main(["--overwrite", "--out", str(tiny_agent.parent), "--model-dir", str(tmp_path)]) == 0
    meta = read_meta(tmp_path / "agent.safetensors")
    assert "consensus" not in meta and "consensus setting" not in meta["note"]
    assert "the last checkpoint: no validation score chose one" in meta["note"]
    out = capsys.readouterr().out
    assert "keeps the default consensus setting" in out and '"consensus": null' in out


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_choose_on_photos_exports_the_kept_policy_best_on_whole_photos(recipe, tmp_path, monkeypatch, capsys):
    import json

    from deepexpose.agents import tuning
    from deepexpose.agents.checkpoint import read_meta
    from deepexpose.agents.train import TrainConfig, train
    from deepexpose.agents.tuning import choose_checkpoint

    def tiny_train(cfg):  # the recipe's choices, on a run small enough for a test
        recipe.configs.append(cfg)
        return train(TrainConfig(data="demo", holdout="coffee", steps=64, batch=8, workers=1, pool_size=16,
                                 eval_size=4, view=16, k=2, eval_every=32, checkpoint_every=0, validation=0.2,
                                 out=cfg.out, progress=False, keep_evaluated=cfg.keep_evaluated, lr=3e-3))
    monkeypatch.setattr(recipe, "train", tiny_train)
    loaded, load = [], tuning.validation_photos
    monkeypatch.setattr(tuning, "validation_photos", lambda model: loaded.append(model) or load(model))
    run, model = tmp_path / "run", tmp_path / "model"
    # --choose-on-photos is the default
    assert recipe.main(["--overwrite", "--out", str(run), "--model-dir", str(model),
                        "--consensus-crops", "0.7", "--consensus-shrinks", "1"]) == 0
    assert len(loaded) == 1  # the validation photos are loaded once, to choose the checkpoint and the setting
    assert recipe.configs[0].keep_evaluated and recipe.configs[0].chroma
    text = capsys.readouterr().out
    report = json.loads(text[text.index("{"):])
    kept = sorted((run / "evaluated").glob("*.safetensors"))
    rows = choose_checkpoint(kept, recipe.CHOOSE_CROPS, recipe.CHOOSE_SHRINKS, draws=recipe.TUNE_DRAWS,
                             log=lambda line: None)["rows"]
    best = max(rows, key=lambda r: r["score"])
    assert report["from"] == best["path"] and report["validation_photos"] == best
    assert report["choosing_seconds"] >= 0
    meta = read_meta(model / "agent.safetensors")
    assert meta["trained"]["step"] == report["step"] == read_meta(best["path"])["step"]
    assert "chosen on the whole photos" in meta["note"] and meta["consensus"] == {"crop": 0.7, "shrink": 1.0}
    chosen = meta["trained"]["chosen"]
    assert chosen["by"] == recipe.CHOSEN_ON_PHOTOS and chosen["step"] == report["step"]
    assert (chosen["score"], chosen["scored_at"]) == (best["score"], {"crop": best["crop"], "shrink": best["shrink"]})
    last = read_meta(run / "checkpoint.safetensors")  # the run's whole record, not the kept file's
    assert meta["trained"]["history"] == last["history"] and meta["trained"]["best"] == last["best"]


def test_choose_on_photos_without_validation_photos_exports_as_without_it(recipe, tiny_agent, tmp_path, monkeypatch,
                                                                         capsys):
    import shutil

    from deepexpose.agents.checkpoint import read_meta
    from deepexpose.agents.tuning import NoValidationPhotos

    run = tmp_path / "run"
    (run / "evaluated").mkdir(parents=True)
    for name in ("checkpoint.safetensors", "checkpoint.json"):
        shutil.copy(tiny_agent.parent / name, run / name)
        shutil.copy(tiny_agent.parent / name, run / "evaluated" / name.replace("checkpoint", "step-000000064"))

    def no_photos(*args, **kwargs):
        raise NoValidationPhotos("this agent's run kept no validation photos: nothing to tune on")
    monkeypatch.setattr(recipe, "choose_checkpoint", no_photos)
    assert recipe.main(["--overwrite", "--out", str(run), "--model-dir", str(tmp_path / "model"), "--choose-on-photos",
                        "--consensus-crops", "", "--consensus-shrinks", ""]) == 0
    out = capsys.readouterr().out
    assert "--choose-on-photos: this agent's run kept no validation photos" in out
    meta = read_meta(tmp_path / "model" / "agent.safetensors")
    assert "the last checkpoint: no validation score chose one" in meta["note"]
    assert meta["trained"]["chosen"] == {"by": recipe.CHOSEN_LAST, "step": 64}


def test_without_choose_on_photos_exports_the_run_best_on_views(recipe, tiny_agent, tmp_path, monkeypatch, capsys):
    import json
    import shutil

    from deepexpose.agents.checkpoint import read_meta

    run = tmp_path / "run"
    run.mkdir()
    for name in ("checkpoint.safetensors", "checkpoint.json"):
        shutil.copy(tiny_agent.parent / name, run / name.replace("checkpoint", "best"))
    best = {"step": 32, "score": 21.5, "validation": {"psnr": 21.5}, "held_out": {"psnr": 20.5}}
    monkeypatch.setattr(recipe, "train", lambda cfg: {"steps": 64, "psnr": 20.0, "best": best})
    assert recipe.main(["--overwrite", "--out", str(run), "--model-dir", str(tmp_path / "model"),
                        "--no-choose-on-photos", "--consensus-crops", "", "--consensus-shrinks", ""]) == 0
    meta = read_meta(tmp_path / "model" / "agent.safetensors")
    assert meta["trained"]["chosen"] == {"by": recipe.CHOSEN_ON_VIEWS, "step": 32, "score": 21.5}
    assert "checkpoint chosen on 10 % of the library's training scene groups" in meta["note"]
    text = capsys.readouterr().out
    report = json.loads(text[text.index("{"):])
    assert (report["from"], report["step"], report["held_out"]) == (str(run / "best.safetensors"), 32, {"psnr": 20.5})


def test_a_policy_kept_before_the_run_ended_is_exported_with_the_run_s_whole_record(recipe, tiny_agent, tmp_path,
                                                                                    monkeypatch):
    import shutil

    from deepexpose.agents.checkpoint import read_meta

    run = tmp_path / "run"
    (run / "evaluated").mkdir(parents=True)
    kept = run / "evaluated" / "step-000000064.safetensors"
    shutil.copy(tiny_agent.parent / "checkpoint.safetensors", kept)
    shutil.copy(tiny_agent.parent / "checkpoint.json", kept.with_suffix(".json"))
    step = read_meta(kept)["step"]
    history = [{"step": step, "psnr": 21.0, "validation": {"psnr": 22.0}}, {"step": step + 64, "psnr": 21.5}]
    best = {"step": step + 64, "score": 22.5, "validation": {"psnr": 22.5}, "held_out": {"psnr": 21.5}}
    monkeypatch.setattr(recipe, "train", lambda cfg: {"steps": step + 64, "history": history, "best": best})
    row = {"path": str(kept), "crop": 0.7, "shrink": 1.5, "psnr": 23.0, "good_psnr": 50.0, "good_shortfall": 0.5,
           "good_within": 0.9, "score": 22.5}
    monkeypatch.setattr(recipe, "choose_checkpoint", lambda *a, **k: {"best": row, "rows": [row]})
    assert recipe.main(["--overwrite", "--out", str(run), "--model-dir", str(tmp_path / "model"),
                        "--consensus-crops", "", "--consensus-shrinks", ""]) == 0
    trained = read_meta(tmp_path / "model" / "agent.safetensors")["trained"]
    assert (trained["step"], trained["history"], trained["best"]) == (step, history, best)
    assert trained["chosen"] == {"by": recipe.CHOSEN_ON_PHOTOS, "step": step, "psnr": 23.0, "good_psnr": 50.0,
                                 "good_shortfall": 0.5, "good_within": 0.9, "score": 22.5,
                                 "scored_at": {"crop": 0.7, "shrink": 1.5}}


def test_no_time_budget_an_earlier_run_and_a_model_dir_that_is_a_file_are_refused_before_training(recipe,
                                                                                                  tiny_agent,
                                                                                                  tmp_path):
    with pytest.raises(SystemExit, match="--minutes must be > 0"):  # 0 would train for days
        recipe.main(["--out", str(tmp_path / "run"), "--model-dir", str(tmp_path), "--minutes", "0"])
    with pytest.raises(SystemExit, match="holds an earlier run .*--overwrite"):
        recipe.main(["--out", str(tiny_agent.parent), "--model-dir", str(tmp_path)])
    (tmp_path / "file").write_text("x")
    for model_dir in (tmp_path / "file", tmp_path / "file" / "sub"):  # a file, or a folder to be made under one
        with pytest.raises(SystemExit, match="--model-dir .* (is|lies under .*, which is) a file, not a folder"):
            recipe.main(["--out", str(tmp_path / "run"), "--model-dir", str(model_dir)])
    if Path("/proc/self").is_dir():  # a folder nobody can make, even as root (the check was os.access)
        with pytest.raises(SystemExit, match="--model-dir /proc/deepexpose-models: cannot write there"):
            recipe.main(["--out", str(tmp_path / "run"), "--model-dir", "/proc/deepexpose-models"])
    assert recipe.configs == []
