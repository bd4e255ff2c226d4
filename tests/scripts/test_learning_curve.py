"""``scripts/learning_curve.py``: the default training on shares of the training photos, one row per run."""

import json
import runpy
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "learning_curve.py"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_one_row_per_share_and_seed(tmp_path, monkeypatch):
    out = tmp_path / "curve"
    monkeypatch.setattr(sys, "argv", ["learning_curve.py", "--fractions", "0.5,1", "--seeds", "0", "--steps", "16",
                                      "--eval-size", "4", "--out", str(out), "--library-packages", ""])  # the demo set
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert done.value.code == 0
    rows = json.loads((out / "curve.json").read_text())
    assert [(r["fraction"], r["seed"]) for r in rows] == [(0.5, 0), (1.0, 0)]
    for r in rows:
        assert r["photos"] >= 1 and 0 < r["held_out"]["input_psnr"] <= 100 and "score" in r["validation"]
        assert (out / f"{r['fraction']:g}-0" / "best.safetensors").is_file()
    # run again into the same OUT: refused before any training, naming the runs, unless --overwrite
    monkeypatch.setattr(sys, "argv", ["learning_curve.py", "--fractions", "0.5", "--seeds", "0", "--out", str(out)])
    with pytest.raises(SystemExit) as refused:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert refused.value.code == 2


@pytest.mark.parametrize("argv, words", [
    (["--fractions", "0"], "--fractions must be shares in (0, 1], got '0'"),
    (["--fractions", "0.5,1.5"], "--fractions must be shares in (0, 1]"),
    (["--fractions", "half"], "--fractions takes numbers"),
    (["--seeds", "a"], "--seeds whole numbers"),
    (["--seeds", ","], "--seeds is empty"),
    (["--steps", "0"], "--steps and --eval-size must be >= 1"),
    (["--fractions", "0.5,0.50"], "--fractions lists a value twice: 0.5, 0.5"),
    (["--seeds", "1,1"], "--seeds lists a value twice"),
    (["--seeds", "0,5000000000"], "--seed must be in 0..4294967295, got 5000000000")])  # not after seed 0's runs
def test_bad_arguments_are_refused_before_any_folder_is_made(tmp_path, monkeypatch, capsys, argv, words):
    """--fractions 0 made the run's folder, then failed naming --train-fraction, an option of deepexpose train."""
    out = tmp_path / "curve"
    monkeypatch.setattr(sys, "argv", ["learning_curve.py", "--out", str(out), *argv])
    with pytest.raises(SystemExit) as refused:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert refused.value.code == 2 and words in capsys.readouterr().err and not out.exists()
