"""``scripts/get_photos.py``: what it refuses before fetching anything."""

import os
import re

import pytest

from conftest import load_script


@pytest.mark.parametrize("args, words", [
    (["--packages", ""], "--packages names no package"),  # it fetched every default package
    (["--packages", " , "], "--packages names no package"),
    (["--cache", "{tmp}/afile"], "--cache .*afile is a file, not a folder"),  # it said only "[Errno 17] File exists"
    (["--sheet", "{tmp}/afile/sheet.jpg"], "--sheet .*afile is a file, not a folder"),
    (["--sheet", "{tmp}/sheet.gif"], "--sheet .*sheet.gif: name a .jpg or .png file"),  # found after fetching
    (["--sheet", "{tmp}/afile.jpg"], "--sheet .*afile.jpg exists: pass --overwrite"),  # it was replaced
    (["--cache", "/proc/deepexpose-photos"], "--cache /proc/deepexpose-photos: cannot write there")])
def test_bad_options_are_refused_before_any_download(args, words, tmp_path, monkeypatch, capsys):
    if "/proc" in " ".join(args) and not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc, where no folder can be made")
    script = load_script("get_photos.py")
    monkeypatch.setattr(script, "fetch_photos", lambda *a, **k: pytest.fail("it fetched"))
    (tmp_path / "afile").write_text("x")
    (tmp_path / "afile.jpg").write_text("an earlier sheet")
    args = [a.format(tmp=tmp_path) for a in args]
    if "--cache" not in args:
        args += ["--cache", str(tmp_path / "cache")]
    with pytest.raises(SystemExit) as e:
        script.main(args)
    assert e.value.code == 2
    assert re.search(words, capsys.readouterr().err)


def test_package_names_are_passed_stripped(tmp_path, monkeypatch):
    script = load_script("get_photos.py")
    asked = []
    monkeypatch.setattr(script, "fetch_photos", lambda cache, packages, include_large: asked.append(packages) or [])
    assert script.main(["--cache", str(tmp_path), "--packages", " scratch, jigzo-data ,"]) == 0
    assert asked == [["scratch", "jigzo-data"]]
