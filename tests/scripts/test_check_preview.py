"""``scripts/check_preview.py``: results chosen on a JPEG preview against those chosen on the whole decode."""

import numpy as np
import pytest
from PIL import Image

from conftest import load_script


def test_compares_the_jpegs_that_get_a_preview(tmp_path, agent_model, capsys):
    check = load_script("check_preview.py")
    y, x = np.mgrid[0:544, 0:640] / 640
    photo = np.stack([0.2 + 0.5 * x, 0.15 + 0.4 * y, 0.1 + 0.3 * x * y], axis=2)
    Image.fromarray((photo * 255).astype(np.uint8)).save(tmp_path / "big.jpg", quality=92)
    Image.fromarray((photo[:200, :240] * 255).astype(np.uint8)).save(tmp_path / "small.jpg", quality=92)
    from deepexpose.methods import AgentMethod

    method = AgentMethod(agent_model)
    row = check.compare(method, tmp_path / "big.jpg")
    assert row["preview"] == [320, 272] and row["size"] == [640, 544]
    assert 40 < row["psnr_between"] <= 100 and row["psnr_to_input"] < 100  # close, and the agent did edit
    assert check.compare(method, tmp_path / "small.jpg") is None
    assert check.main([str(tmp_path), "--model", str(agent_model)]) == 0
    out = capsys.readouterr().out
    assert "big.jpg" in out and "small.jpg" not in out and "1 JPEGs" in out
    twice = [str(tmp_path), str(tmp_path / ".." / tmp_path.name), "--model", str(agent_model)]
    assert check.main(twice) == 0 and "\n1 JPEGs" in capsys.readouterr().out  # one photo, counted once (was 2)
    with pytest.raises(SystemExit):  # '' searched the current folder
        check.main(["", "--model", str(agent_model)])
    assert "a folder given is empty" in capsys.readouterr().err
    (tmp_path / "big.jpg").unlink()
    assert check.main([str(tmp_path), "--model", str(agent_model)]) == 1
    with pytest.raises(SystemExit):
        check.main([])


def test_a_damaged_jpeg_is_skipped_and_a_missing_folder_refused(tmp_path, agent_model, capsys):
    check = load_script("check_preview.py")
    y, x = np.mgrid[0:544, 0:640] / 640
    photo = np.stack([0.2 + 0.5 * x, 0.15 + 0.4 * y, 0.1 + 0.3 * x * y], axis=2)
    Image.fromarray((photo * 255).astype(np.uint8)).save(tmp_path / "big.jpg", quality=92)
    (tmp_path / "a-broken.jpg").write_bytes((tmp_path / "big.jpg").read_bytes()[:300])  # sorted first
    assert check.main([str(tmp_path), "--model", str(agent_model)]) == 0  # the good one is still compared
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "a-broken.jpg" in captured.err and "1 JPEGs" in captured.out
    for argv in ([str(tmp_path / "none")], [str(tmp_path / "big.jpg")], [str(tmp_path), "--limit", "-1"]):
        with pytest.raises(SystemExit) as e:
            check.main(argv)
        assert e.value.code == 2
