"""The demo's sample photos and the before/after demo."""

import json

import torch

from deepexpose.cli import main
from deepexpose.samples import SAMPLES, make_sample, write_samples


def test_make_sample_errors():
    photo = torch.full((1, 3, 21, 31), 0.5)
    dark = make_sample(photo, {"exposure": {"ev": -1.0}})
    assert dark.mean() < 0.4
    v = make_sample(photo, "vignette")
    assert torch.allclose(v[..., 10, 15], photo[..., 10, 15])  # the centre keeps its light
    assert (v[..., 0, 0] < 0.35).all()  # the corners lose 1.5 EV
    assert torch.equal(make_sample(photo, {}), photo)


def test_write_samples(tmp_path):
    paths, originals = write_samples(tmp_path)
    assert [p.stem for p in paths] == [s[0] for s in SAMPLES]
    record = json.loads((tmp_path / "samples.json").read_text())
    assert record["coffee_dark"]["error"] == {"exposure": {"ev": -1.2}}
    from deepexpose.io import read_image

    dark = read_image(tmp_path / "coffee_dark.png").pixels
    assert min(dark.shape[:2]) == 384 and dark.mean() < originals["coffee_dark"].mean() - 0.1


def test_demo_command_with_classic(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--method", "classic", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "coffee_dark" in printed and "before_after.jpg" in printed
    scores = json.loads((out / "scores.json").read_text())
    assert len(scores) == len(SAMPLES)
    dark = next(s for s in scores if s["sample"] == "coffee_dark")
    assert dark["after_psnr"] > dark["before_psnr"]  # auto exposure brightens the dark sample
    assert (out / "before_after.jpg").is_file() and (out / "enhanced" / "coffee_dark.png.json").is_file()
    capsys.readouterr()
    assert main(["demo", "-o", str(out), "--method", "classic", "--no-progress"]) == 2  # exists
    assert "pass --overwrite" in capsys.readouterr().err  # the command's flag, not the library's argument
    assert main(["demo", "-o", str(out), "--method", "classic", "--no-progress", "--overwrite"]) == 0
