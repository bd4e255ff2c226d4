"""``scripts/compare_algorithms.py``: its table and the best checkpoint's columns."""

from conftest import load_script


def test_row_adds_the_best_checkpoints_held_out_scores():
    compare = load_script("compare_algorithms.py")
    result = {"algo": "td3", "steps": 900, "psnr": 6.0, "delta_e2000": 40.0,
              "best": {"step": 0, "score": 21.0, "held_out": {"psnr": 21.2, "delta_e2000": 10.0}}}
    r = compare.row(result)
    assert (r["best_step"], r["best_psnr"], r["best_delta_e2000"]) == (0, 21.2, 10.0) and r["psnr"] == 6.0
    assert compare.row({"algo": "identity", "steps": 0, "psnr": 21.2}) == {"algo": "identity", "steps": 0,
                                                                          "psnr": 21.2}
    assert compare.row({"algo": "a2c", "best": None}) == {"algo": "a2c", "best": None}


def test_table_has_a_column_per_key_and_blanks_what_a_row_lacks():
    compare = load_script("compare_algorithms.py")
    lines = compare.table([{"algo": "identity", "steps": 0, "psnr": 21.171, "good_psnr": 100.0},
                           compare.row({"algo": "td3", "steps": 900, "psnr": 5.9,
                                        "best": {"step": 0, "held_out": {"psnr": 21.2, "delta_e2000": 10.0}}})]
                          ).splitlines()
    assert lines[0] == "| " + " | ".join(compare.COLUMNS) + " |" and len(lines) == 4
    cells = [line.strip("|").split("|") for line in lines[2:]]
    assert all(len(c) == len(compare.COLUMNS) for c in cells)
    identity = dict(zip(compare.COLUMNS, (c.strip() for c in cells[0]), strict=True))
    td3 = dict(zip(compare.COLUMNS, (c.strip() for c in cells[1]), strict=True))
    assert identity["psnr"] == "21.17" and identity["best_step"] == "" and identity["good_psnr"] == "100.00"
    assert td3["best_step"] == "0" and td3["best_psnr"] == "21.20" and td3["best_delta_e2000"] == "10.00"


def test_bad_arguments_are_refused_before_any_work(monkeypatch, capsys):
    import pytest

    compare = load_script("compare_algorithms.py")
    monkeypatch.setattr(compare, "build_pools", lambda cfg: pytest.fail("work began"))
    for argv, words in ((["--algos", "adpg,ppo2"], "unknown --algos ppo2"), (["--algos", "a2c,a2c"], "twice"),
                        (["--minutes", "0"], "--minutes must be a finite number > 0"),
                        (["--minutes", "inf"], "--minutes must be a finite number > 0")):  # never ended
        monkeypatch.setattr("sys.argv", ["compare_algorithms.py", *argv])
        with pytest.raises(SystemExit) as e:
            compare.main()
        assert e.value.code == 2 and words in capsys.readouterr().err


def test_finished_runs_are_read_back_and_the_table_is_written_as_rows_come(tmp_path, monkeypatch):
    import json

    compare = load_script("compare_algorithms.py")
    monkeypatch.setattr(compare, "build_pools", lambda cfg: (None, None))
    monkeypatch.setattr(compare, "make_core", lambda cfg: type("Core", (), {"action_dim": 1})())
    monkeypatch.setattr(compare, "evaluate", lambda act, core, pool: {"psnr": 20.0})
    monkeypatch.setattr(compare, "classic_act", lambda core: None)
    trained = []

    def train(cfg):
        trained.append((cfg.algo, cfg.overwrite))
        assert json.loads((tmp_path / "compare.json").read_text())["rows"][-1]["algo"] != cfg.algo  # written already
        return {"algo": cfg.algo, "steps": 10, "psnr": 22.0, "best": None}

    monkeypatch.setattr(compare, "train", train)
    import dataclasses

    from PIL import Image

    from deepexpose.agents.train import TrainConfig, resolve_data
    from deepexpose.data.packages import MANIFEST

    library = tmp_path / "photos"  # a library of one package "a", which the runs are given (named packages must exist)
    (library / "a").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(library / "a" / "p.png")
    (library / "a" / MANIFEST).write_text(json.dumps({"package": "a", "photos": [
        {"file": "p.png", "name": "p", "licence": "CC0-1.0", "credit": "test", "group": "a:p", "sha256": ""}]}))
    monkeypatch.setenv("DEEPEXPOSE_PHOTOS", str(library))
    for algo, minutes in (("adpg", 5.0), ("a3c", 1.0)):  # finished earlier: a3c with another budget
        (tmp_path / algo).mkdir()
        (tmp_path / algo / "eval.json").write_text(json.dumps({"algo": algo, "steps": 99, "psnr": 23.0}))
        saved = resolve_data(TrainConfig(algo=algo, minutes=minutes, holdout="coffee,chelsea", eval_size=128,
                                         library_packages="a"))
        (tmp_path / algo / "config.json").write_text(json.dumps(dataclasses.asdict(saved)))
    monkeypatch.setattr("sys.argv", ["compare_algorithms.py", "--algos", "adpg,a3c,a2c", "--out", str(tmp_path),
                                     "--library-packages", "a"])
    compare.main()
    assert trained == [("a3c", True), ("a2c", True)]  # adpg finished with these settings: read back
    doc = json.loads((tmp_path / "compare.json").read_text())
    rows = doc["rows"]
    settings = {k: doc["settings"][k] for k in ("algo", "eval_size", "steps", "eval_every", "minutes", "out")}
    assert settings == {"algo": ["adpg", "a3c", "a2c"], "eval_size": 128, "steps": 10 ** 12, "eval_every": 0,
                        "minutes": 5.0, "out": str(tmp_path / "ALGO")}  # what the runs were given
    assert [(r["algo"], r["steps"]) for r in rows] == [("identity", 0), ("classic", 0), ("adpg", 99), ("a3c", 10),
                                                       ("a2c", 10)]
