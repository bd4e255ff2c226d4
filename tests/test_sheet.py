import numpy as np
import pytest
import torch

from deepexpose.sheet import GAP, LABEL_HEIGHT, contact_sheet


def test_layout_and_content():
    red = torch.zeros(3, 20, 40)
    red[0] = 1.0
    blue = np.zeros((10, 10, 3), dtype=np.float32)
    blue[..., 2] = 1.0
    sheet = contact_sheet([[red, blue], [blue]], labels=["a", "b"], cell=30)
    assert sheet.dtype == np.uint8 and sheet.shape == (LABEL_HEIGHT + 2 * (30 + GAP) + GAP, 60 + 30 + 3 * GAP, 3)
    top = LABEL_HEIGHT + GAP
    assert tuple(sheet[top + 15, GAP + 30]) == (255, 0, 0)            # row 0, column 0: red, 60 wide
    assert tuple(sheet[top + 15, 2 * GAP + 60 + 15]) == (0, 0, 255)   # row 0, column 1: blue
    assert tuple(sheet[top + 30 + GAP + 15, GAP + 15]) == (0, 0, 255)  # row 1, column 0
    assert tuple(sheet[top + 30 + GAP + 15, 2 * GAP + 60 + 15]) == (255, 255, 255)  # empty cell stays white
    assert (sheet[:LABEL_HEIGHT] < 128).any()                         # labels drawn


def test_errors():
    with pytest.raises(ValueError):
        contact_sheet([])
    with pytest.raises(ValueError, match="labels"):
        contact_sheet([[torch.rand(3, 4, 4)]], labels=["a", "b"])
    with pytest.raises(ValueError):
        contact_sheet([[torch.rand(4, 4)]])


def test_captions_darken_the_bottom_strip_and_write_text():
    grey = np.full((40, 40, 3), 0.8, dtype=np.float32)
    plain = contact_sheet([[grey, grey]], cell=40)
    sheet = contact_sheet([[grey, grey]], cell=40, captions=[["12.3 dB", ""]])
    top = GAP
    strip = sheet[top + 40 - 10, GAP + 1 : GAP + 39]
    assert (strip < 120).any() and (strip > 200).any()                # dark strip with white text
    assert np.array_equal(sheet[top : top + 20], plain[top : top + 20])  # above the strip: untouched
    second = slice(2 * GAP + 40, 2 * GAP + 80)
    assert np.array_equal(sheet[:, second], plain[:, second])          # an empty caption changes nothing
    with pytest.raises(ValueError, match="captions"):
        contact_sheet([[grey, grey]], captions=[["a"]])
