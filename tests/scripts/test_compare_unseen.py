"""``scripts/compare_unseen.py``: methods and auto tools on held-out photos with errors no model trained for."""

import json
import os
import re

import numpy as np

from conftest import load_script


def test_agent_rows_with_and_without_consensus(tmp_path):
    compare = load_script("compare_unseen.py")
    rows = {}
    for single in (False, True):
        out = tmp_path / f"single{single}.json"
        args = ["--methods", "agent,identity", "--tools", "", "--errors", "untouched,falloff", "--limit", "1",
                "--no-library", "--size", "64", "--out", str(out)] + (["--single-view"] if single else [])
        assert compare.main(args) == 0
        result = json.loads(out.read_text())
        assert result["settings"]["single_view"] is single and len(result["cases"]) == 2
        rows[single] = result["cases"]
        untouched = next(c for c in result["cases"] if c["error"] == "untouched")
        assert untouched["scores"]["identity"]["psnr"] >= 100 and untouched["scores"]["input"]["psnr"] >= 100
    # the same photos and errors either way; the agent's answers are its own
    assert [c["params"] for c in rows[False]] == [c["params"] for c in rows[True]]
    assert any(a["scores"]["agent"] != b["scores"]["agent"] for a, b in zip(rows[False], rows[True], strict=True))


def test_single_view_needs_the_agent(tmp_path):
    import pytest

    with pytest.raises(SystemExit):
        load_script("compare_unseen.py").main(["--methods", "identity", "--single-view", "--tools", "",
                                               "--out", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()


def test_method_corrector_leaves_its_input_alone():
    compare = load_script("compare_unseen.py")
    px = (np.random.default_rng(0).random((32, 48, 3)) * 255).astype(np.uint8)
    px.setflags(write=False)
    for single in (False, True):
        out = compare.method_corrector("agent", "", single)(px)
        assert out.shape == px.shape and out.dtype == np.uint8


def test_a_method_that_cannot_load_stops_the_run_and_a_negative_limit_is_refused(tmp_path):
    import pytest

    with pytest.raises(SystemExit, match="method agent cannot be compared"):  # it used to be dropped, exit 0
        load_script("compare_unseen.py").main(["--methods", "agent", "--model", str(tmp_path / "none.safetensors"),
                                               "--tools", "", "--no-library", "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit):
        load_script("compare_unseen.py").main(["--limit", "-1", "--out", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()
    (tmp_path / "x.json").write_text("{}")  # an earlier comparison: replaced only with --overwrite
    quick = ["--methods", "identity", "--tools", "", "--no-library", "--limit", "1", "--size", "32", "--errors",
             "falloff", "--out", str(tmp_path / "x.json")]
    with pytest.raises(SystemExit) as e:
        load_script("compare_unseen.py").main(quick)
    assert e.value.code == 2 and (tmp_path / "x.json").read_text() == "{}"
    assert load_script("compare_unseen.py").main([*quick, "--overwrite"]) == 0
    assert json.loads((tmp_path / "x.json").read_text())["cases"]


def test_options_that_would_measure_something_else_or_fail_at_the_end_are_refused_first(tmp_path, capsys):
    """Found by a review of the scripts: an unwritable --out failed after the scoring; a --library that does not
    exist measured the demo photos only; --errors basic,basic scored each case twice; --model was ignored with
    model-free methods."""
    import pytest

    (tmp_path / "afile").write_text("x")
    quick = ["--methods", "identity", "--tools", "", "--limit", "1", "--size", "32", "--errors", "falloff"]
    for args, words in ([["--out", str(tmp_path / "afile" / "x.json")], "--out .*afile is a file, not a folder"],
                        [["--errors", "basic,basic"], "--errors lists a case twice"],
                        [["--model", str(tmp_path / "m.safetensors")], "--model applies to the methods that take"],
                        [["--library", str(tmp_path / "none")], "--library .*none: no such folder"],
                        [["--library", str(tmp_path), "--no-library"], "--library .*: --no-library leaves it out"]):
        with pytest.raises(SystemExit) as e:
            load_script("compare_unseen.py").main([*quick, "--out", str(tmp_path / "x.json"), *args])
        assert e.value.code == 2
        assert re.search(words, capsys.readouterr().err), words
    if os.path.isdir("/proc/self"):  # a folder nobody can write in, even as root
        with pytest.raises(SystemExit):
            load_script("compare_unseen.py").main([*quick, "--no-library", "--out", "/proc/deepexpose-unseen/x.json"])
        assert "--out /proc/deepexpose-unseen: cannot write there" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
