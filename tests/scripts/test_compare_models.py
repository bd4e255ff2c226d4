"""``scripts/compare_models.py``: agent models scored on the photos every one of them held out."""

import json

import pytest

from conftest import cached_package, load_script
from deepexpose.agents.train import TrainConfig, library_records

compare = load_script("compare_models.py")


def test_common_photos_are_held_out_by_every_model(tmp_path):
    demo = [TrainConfig(data="demo", holdout="coffee,chelsea"), TrainConfig(data="demo", holdout="coffee")]
    assert compare.common_photos([compare.held_out(c) for c in demo]) == (["coffee"], [])
    for name, count in (("pkg-a", 30), ("pkg-b", 40)):
        cached_package(tmp_path, name, count)
    configs = [TrainConfig(data="library", root=str(tmp_path), library_packages=p) for p in ("pkg-a", "pkg-a,pkg-b")]
    names, records = compare.common_photos([compare.held_out(c) for c in configs])
    assert names == ["chelsea", "coffee", "motorcycle"]  # the default hold-outs, shared
    splits = [library_records(c) for c in configs]
    held = [{str(r.path) for r in s[1]} for s in splits]
    trained = set().union(*({str(r.path) for r in s[0]} for s in splits))
    got = {str(r.path) for r in records}
    assert got == held[0] & held[1] and got and not got & trained
    assert held[0] != held[1]  # adding a package moved groups: the reason for this script
    with pytest.raises(ValueError, match="demo or library"):
        compare.held_out(TrainConfig(data="pairs", root=str(tmp_path)))


def test_a_split_the_photo_cache_cannot_rebuild_is_said_as_the_model_s(tmp_path, monkeypatch):
    """The options named are those the model was trained with: "--library-packages names pkg-b" alone read as an
    option of this script, which has none (found by review)."""
    cached_package(tmp_path, "pkg-a", 30)
    monkeypatch.setattr(compare, "training_config", lambda agent: TrainConfig(
        data="library", root=str(tmp_path), library_packages="pkg-a,pkg-b"))
    with pytest.raises(ValueError, match=r"^runs/x.safetensors, as it was trained: --library-packages names pkg-b, not "
                                         r"in the photo library .* scripts/get_photos.py --packages pkg-b$"):
        compare.model_split("runs/x.safetensors", None)


@pytest.mark.filterwarnings("ignore::UserWarning")  # the demo photos are too few
def test_scores_every_model_on_the_same_views(tiny_agent, tmp_path, agent_model):
    out = tmp_path / "r.json"
    assert compare.main([str(tiny_agent), str(tiny_agent), "--no-bundled", "--count", "6", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["photos"] == {"demo": ["coffee"], "library": []} and doc["views"] == 6
    first, second = doc["results"]
    assert first == second and 0 < first["input_psnr"] < 100 and first["delta_e2000"] >= 0
    assert compare.main([str(tiny_agent), "--no-bundled", "--count", "6", "--out", str(out), "--overwrite"]) == 0
    with pytest.raises(ValueError, match="no training config"):  # an exported model without its config
        compare.main([str(agent_model), "--no-bundled"])


def test_a_count_below_one_and_an_out_folder_are_refused(tiny_agent, tmp_path):
    compare = load_script("compare_models.py")
    (tmp_path / "earlier.json").write_text("{}")
    for argv in (["--count", "0"], ["--out", str(tmp_path)], ["--out", str(tmp_path / "earlier.json")]):
        with pytest.raises(SystemExit) as e:
            compare.main([str(tiny_agent), "--no-bundled", *argv])
        assert e.value.code == 2
    assert (tmp_path / "earlier.json").read_text() == "{}"  # an earlier comparison is replaced only with --overwrite
