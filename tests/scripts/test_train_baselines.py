"""``scripts/train_baselines.py``: its options refused before any training."""

import argparse
import json
from pathlib import Path

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


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc, where no folder can be made")
def test_a_model_dir_that_cannot_be_written_is_refused_before_anything_trains(monkeypatch, tmp_path):
    script = load_script("train_baselines.py")
    trained = []
    monkeypatch.setattr(script, "TRAINERS", {name: (object, lambda cfg: trained.append(cfg), "m.safetensors")
                                             for name in script.TRAINERS})
    monkeypatch.setattr(script, "chosen_packages", lambda given: ["p"])  # checked before: the library may be absent
    with pytest.raises(SystemExit, match="--model-dir /proc/deepexpose-models: cannot write there"):
        script.main(["--out", str(tmp_path / "runs"), "--model-dir", "/proc/deepexpose-models"])
    assert trained == []


def test_each_model_is_exported_with_its_whole_held_out_evaluation(monkeypatch, tmp_path, capsys):
    """The cGAN's and the classifier's figures are dicts (views and photos; single and basic errors): the report
    printed only the other values, so none of their PSNR or CIEDE2000."""
    script = load_script("train_baselines.py")
    result = {"steps": 3, "view": {"psnr": 22.5, "delta_e2000": 8.5}, "photo": {"psnr": 24.0, "count": 4}}

    def fake(cfg):
        out = Path(cfg.out)
        out.mkdir(parents=True)
        (out / "cgan.safetensors").write_bytes(b"weights")
        (out / "cgan.json").write_text("{}")
        return result

    monkeypatch.setattr(script, "TRAINERS", {"cgan": (lambda **kw: argparse.Namespace(**kw), fake,
                                                      "cgan.safetensors")})
    monkeypatch.setattr(script, "chosen_packages", lambda given: ["p"])
    assert script.main(["--methods", "cgan", "--out", str(tmp_path / "runs"), "--model-dir",
                        str(tmp_path / "models")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"cgan": {"bytes": 7, "held_out": result}}
    assert (tmp_path / "models" / "cgan.safetensors").read_bytes() == b"weights"
    assert (tmp_path / "models" / "cgan.json").read_text() == "{}"
