"""``scripts/tune_consensus.py``: consensus settings scored on the agent's validation photos only."""

from pathlib import Path

import pytest

from conftest import cached_package, load_script


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_grid_report(tiny_agent, run_script):
    report = run_script("tune_consensus.py", ["--model", str(tiny_agent), "--crops", "0.8", "--shrinks", "0",
                                              "--untouched-within", "0,0.01", "--draws", "1"])
    assert report["model"] == str(tiny_agent) and (report["draws"], report["seed"]) == (1, 0)
    assert [r.get("untouched_within") for r in report["rows"]] == [None, 0.0, 0.01]
    assert report["best"] == max(report["rows"], key=lambda r: r["score"]) and "exported" not in report
    assert report["colour"] and all("delta_e2000" in r for r in report["rows"])


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_packages_add_library_photos_to_the_validation_photos(tiny_agent, run_script, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cached_package(cache, "scratch", 4)
    monkeypatch.setenv("DEEPEXPOSE_PHOTOS", str(cache))
    args = ["--model", str(tiny_agent), "--crops", "0.8", "--shrinks", "1", "--draws", "1", "--no-colour"]
    own = run_script("tune_consensus.py", args)
    more = run_script("tune_consensus.py", [*args, "--packages", " scratch,", "--count", "3"])
    assert more["validation_photos"] == own["validation_photos"] + 3 and more["packages"] == ["scratch"]
    assert own["packages"] == [] and more["rows"][1]["psnr"] != own["rows"][1]["psnr"]
    for bad, why in ((["--count", "3"], "needs --packages"), (["--packages", "scratch", "--count", "0"], "at least 1"),
                     (["--packages", "plasma-workspace-wallpapers"], "reserved")):
        with pytest.raises(SystemExit, match=why):
            load_script("tune_consensus.py").main([*args, *bad])


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_no_colour_measures_ciede2000_for_the_chosen_row_only(tiny_agent, run_script):
    args = ["--model", str(tiny_agent), "--crops", "0.8", "--shrinks", "0,1", "--untouched-within", "0,0.01",
            "--draws", "1"]
    full = run_script("tune_consensus.py", args)
    fast = run_script("tune_consensus.py", [*args, "--no-colour"])
    assert not fast["colour"]
    carried = [r for r in fast["rows"] if r["views"] == "consensus" and r["untouched_within"] == 0]
    chosen = max(carried, key=lambda r: r["score"])
    assert [r for r in fast["rows"] if "delta_e2000" in r] == [chosen]
    twin = next(r for r in full["rows"] if all(r.get(k) == chosen[k] for k in ("views", "crop", "shrink",
                                                                                  "untouched_within")))
    assert chosen == twin  # the same scores, CIEDE2000 included, as with every row measured


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


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_gains_grid_and_export(tiny_agent, run_script, tmp_path):
    from deepexpose.agents.checkpoint import read_meta
    from deepexpose.methods import AgentMethod

    out = tmp_path / "gained.safetensors"
    report = run_script("tune_consensus.py", ["--model", str(tiny_agent), "--crops", "0.8", "--shrinks", "0",
                                              "--gains", "white_balance=0,1;exposure=0,2", "--draws", "1",
                                              "--no-colour", "--export", str(out)])
    rows = [r for r in report["rows"] if r["views"] == "consensus"]
    assert [r["gains"] for r in rows] == [{"white_balance": w, "exposure": e} for w in (0.0, 1.0) for e in (0.0, 2.0)]
    chosen = max(rows, key=lambda r: r["score"])
    setting = {"crop": 0.8, "shrink": 0.0, "gains": chosen["gains"]}
    assert report["exported"]["consensus"] == setting and read_meta(out)["consensus"] == setting
    assert AgentMethod(out).gains == chosen["gains"]


@pytest.mark.parametrize("args", [["--export", "x.safetensors"],
                                  ["--model", "m.safetensors", "--untouched-within", "1", "--export", "x.safetensors"],
                                  ["--model", "m.safetensors", "--crops", "", "--export", "x.safetensors"]])
def test_export_refuses_what_it_cannot_write(args):
    tune = load_script("tune_consensus.py")
    with pytest.raises(SystemExit, match="--export needs"):
        tune.main(args)


@pytest.mark.parametrize("args,message", [(["--crops", "2"], "--crops: crop must be"),
                                          (["--untouched-within", "x"], "--untouched-within: could not"),
                                          (["--draws", "0"], "--draws must be at least 1"),
                                          (["--untouched-within", "0,-5"], "--untouched-within: thresholds are dB"),
                                          (["--gains", "sharpen=2"], "--gains: gains for unknown filters")])
def test_a_bad_grid_is_refused_before_scoring(args, message, monkeypatch, tiny_agent):
    tune = load_script("tune_consensus.py")
    args = ["--model", str(tiny_agent), *args]
    monkeypatch.setattr(tune, "tune_consensus", lambda *a, **k: pytest.fail("scored before refusing"))
    with pytest.raises(SystemExit, match=message):
        tune.main(args)


@pytest.mark.parametrize("out", ["{model}", "{run}/checkpoint.json", "{run}/checkpoint",
                                 "{run}/../{name}/checkpoint.v2", "{tmp}/existing.safetensors"])
def test_export_refuses_the_models_own_files_and_existing_ones_before_scoring(tiny_agent, out, monkeypatch, tmp_path):
    tune = load_script("tune_consensus.py")
    run = tiny_agent.parent
    (tmp_path / "existing.json").write_text("{}")  # another model's JSON
    monkeypatch.setattr(tune, "tune_consensus", lambda *a, **k: pytest.fail("scored before refusing"))
    before = {p: p.read_bytes() for folder in (run, tmp_path) for p in folder.iterdir() if p.is_file()}
    target = out.format(model=tiny_agent, run=run, name=run.name, tmp=tmp_path)
    with pytest.raises(SystemExit, match="--export: .*(overwrite the model|exists)"):
        tune.main(["--model", str(tiny_agent), "--export", target])
    assert {p: p.read_bytes() for folder in (run, tmp_path) for p in folder.iterdir() if p.is_file()} == before


def test_export_refuses_a_path_under_a_file_before_scoring(tiny_agent, monkeypatch, tmp_path):
    tune = load_script("tune_consensus.py")
    (tmp_path / "afile").write_text("x")
    monkeypatch.setattr(tune, "tune_consensus", lambda *a, **k: pytest.fail("scored before refusing"))
    with pytest.raises(SystemExit, match="--export .*afile is a file, not a folder"):
        tune.main(["--model", str(tiny_agent), "--export", str(tmp_path / "afile" / "m.safetensors")])
    if Path("/proc/self").is_dir():  # a folder nobody can make, even as root (the check was os.access)
        with pytest.raises(SystemExit, match="--export /proc/deepexpose-models: cannot write there"):
            tune.main(["--model", str(tiny_agent), "--export", "/proc/deepexpose-models/m.safetensors"])


def test_a_model_of_another_kind_is_named_by_what_it_is(monkeypatch):
    """It said "unknown TrainConfig fields: dropout, size, stats, threads, width" (found by review)."""
    from deepexpose.agents.policy import default_model_path

    tune = load_script("tune_consensus.py")
    with pytest.raises(SystemExit, match="is a seed001-classifier model; only the own trainer's .* --method "
                                         "classifier"):
        tune.main(["--model", str(default_model_path().with_name("classifier.safetensors")), "--draws", "1"])
