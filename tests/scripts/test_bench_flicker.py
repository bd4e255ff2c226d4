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
