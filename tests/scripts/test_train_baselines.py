"""``scripts/train_baselines.py``: its options refused before any training."""

import pytest

from conftest import load_script


@pytest.mark.parametrize("args, message", [(["--minutes", "0"], "--minutes must be > 0, got 0.0"),
                                           (["--minutes", "-1"], "--minutes must be > 0"),
                                           (["--methods", "classifier,bogus"], "unknown baseline 'bogus'"),
                                           (["--methods", ","], r"unknown baseline '\(none\)'")])
def test_bad_options_are_refused_before_anything_trains(args, message, monkeypatch, tmp_path):
    script = load_script("train_baselines.py")
    trained = []
    monkeypatch.setattr(script, "TRAINERS", {name: (object, lambda cfg: trained.append(cfg), "m.safetensors")
                                             for name in script.TRAINERS})
    with pytest.raises(SystemExit, match=message):
        script.main([*args, "--out", str(tmp_path / "runs"), "--model-dir", str(tmp_path / "models")])
    assert trained == [] and not (tmp_path / "runs").exists() and not (tmp_path / "models").exists()
