"""``scripts/bench_flicker.py``: the panning clip across a held-out photo."""

import numpy as np
import pytest

from conftest import load_script


def test_pan_clip_moves_a_window_across_the_photo():
    bf = load_script("bench_flicker.py")
    photo = np.random.default_rng(0).random((20, 30, 3))
    frames = bf.pan_clip(photo, n=8, h=10, w=12, step=3)
    assert len(frames) == 8 and all(f.shape == (10, 12, 3) for f in frames)
    np.testing.assert_array_equal(frames[0], photo[:10, :12])
    np.testing.assert_array_equal(frames[1][:, :-3], frames[0][:, 3:])  # 3 pixels to the right
    np.testing.assert_array_equal(frames[7], photo[3:13, 18:30])  # at the right edge it moves down
    with pytest.raises(ValueError, match="too small"):
        bf.pan_clip(photo, n=30, h=10, w=12, step=3)


def test_clip_frames():
    bf = load_script("bench_flicker.py")
    pan, dark = bf.clip_frames("pan", 0.0), bf.clip_frames("pan", -1.0)
    assert len(pan) == 48 and pan[0].shape == (96, 128, 3)
    assert np.mean(dark[0]) < np.mean(pan[0]) - 0.05
    synthetic = bf.clip_frames("synthetic", 0.0)
    assert len(synthetic) == 48 and synthetic[0].shape == (96, 128, 3)


def _frames(n: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [(rng.random((32, 48, 3)) * (0.4 + 0.1 * (i % 2)) * 255).astype(np.uint8) for i in range(n)]


def test_measure_a_folder_of_frames_and_a_video(tmp_path):
    from PIL import Image

    from deepexpose.video import flicker, frame_statistics, read_clip, write_clip

    bf = load_script("bench_flicker.py")
    frames = _frames()
    folder = tmp_path / "seq"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"f{i:02d}.png")
    video = tmp_path / "clip.avi"
    write_clip(video, frames, fps=10.0, size=(48, 32))
    decoded = list(read_clip(video)[1])
    for source, frames_mode, seen in ((folder, True, frames), (video, False, decoded)):
        rows = bf.measure(source, frames_mode, ["classic"], [1, 3], tmp_path / f"out-{source.name}")
        assert [(m, w) for m, w, *_ in rows] == [("classic", 1), ("classic", 3)]
        assert all(row[4:] == (6, 0) for row in rows)  # six frames, none repeating the one before it
        expected = flicker([frame_statistics(f) for f in seen])  # the clip's own flicker, measured independently
        for _, _, fin, fout, _, _ in rows:
            assert fin == pytest.approx(expected)
            assert set(fout) == {"luminance", "rgb"}
        # frame by frame, classic's auto exposure evens out the alternating brightness; smoothed over 3 frames one
        # gain for all lets the alternation through (brightened, so larger than the input's)
        assert rows[0][3]["luminance"] < 0.2 * expected["luminance"] < expected["luminance"] < rows[1][3]["luminance"]
    assert video.is_file() and len(list(folder.iterdir())) == 6  # inputs untouched


def test_main_refuses_a_missing_clip_an_image_and_misplaced_ev(tmp_path, monkeypatch, capsys):
    bf = load_script("bench_flicker.py")
    monkeypatch.setattr("sys.argv", ["bench_flicker.py", "--clip", str(tmp_path / "none.mp4")])
    with pytest.raises(SystemExit):
        bf.main()
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "seq").mkdir()
    monkeypatch.setattr("sys.argv", ["bench_flicker.py", "--clip", str(tmp_path / "seq"), "--ev", "-1"])
    with pytest.raises(SystemExit):
        bf.main()
    assert "--ev applies to --clip pan only" in capsys.readouterr().err
    monkeypatch.setattr("sys.argv", ["bench_flicker.py", "--ev", "-1"])  # the synthetic clip has no --ev either
    with pytest.raises(SystemExit):
        bf.main()
    assert "--ev applies to --clip pan only" in capsys.readouterr().err
    (tmp_path / "photo.png").write_bytes(b"")
    monkeypatch.setattr("sys.argv", ["bench_flicker.py", "--clip", str(tmp_path / "photo.png")])
    with pytest.raises(SystemExit):
        bf.main()
    assert "not a video" in capsys.readouterr().err
    for windows in ("0", "1,4"):  # 0 used to be labelled 0 and measured as the method's default (9)
        monkeypatch.setattr("sys.argv", ["bench_flicker.py", "--windows", windows])
        with pytest.raises(SystemExit):
            bf.main()
        assert "--windows must be odd and >= 1" in capsys.readouterr().err
    monkeypatch.setattr("sys.argv", ["bench_flicker.py", "--clip", "pan", "--ev", "nan"])
    with pytest.raises(SystemExit):
        bf.main()
    assert "--ev must be finite" in capsys.readouterr().err
    for args, words in ((["--windows", "1,1"], "--windows lists a value twice"),  # failed after the first method
                        (["--methods", "classic, classic"], "--methods lists a value twice"),
                        (["--methods", " , "], "--methods names no method")):  # printed an empty table
        monkeypatch.setattr("sys.argv", ["bench_flicker.py", *args])
        with pytest.raises(SystemExit):
            bf.main()
        assert words in capsys.readouterr().err


def test_model_picks_the_agent_measured(tmp_path, monkeypatch, capsys, agent_model):
    """The README repeats its flicker figures for another agent with --model, which the script did not have."""
    from PIL import Image

    import deepexpose.enhance as enhance

    bf = load_script("bench_flicker.py")
    folder = tmp_path / "seq"
    folder.mkdir()
    for i, f in enumerate(_frames()):
        Image.fromarray(f).save(folder / f"f{i:02d}.png")
    given = []
    load = enhance._load
    monkeypatch.setattr(enhance, "_load", lambda cfg: given.append((cfg.method, cfg.model)) or load(cfg))
    rows = bf.measure(folder, True, ["classic", "agent"], [1], tmp_path / "out", str(agent_model))
    assert [r[0] for r in rows] == ["classic", "agent"] and given == [("classic", ""), ("agent", str(agent_model))]
    for argv, words in ((["--methods", "agent,cgan", "--model", str(agent_model)], "exactly one of"),
                        (["--methods", "agent", "--model", str(tmp_path / "none")], "--model: no such file")):
        monkeypatch.setattr("sys.argv", ["bench_flicker.py", *argv])
        with pytest.raises(SystemExit):
            bf.main()
        assert words in capsys.readouterr().err
