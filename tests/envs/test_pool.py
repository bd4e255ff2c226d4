import pytest
import torch

from conftest import random_image
from deepexpose.envs.pool import PairPool, random_crop, to_view


def photos(n=2):
    return [random_image(b=1, h=40 + 8 * i, w=56, seed=i)[0] for i in range(n)]


def test_from_photos_is_seeded_and_shaped():
    a = PairPool.from_photos(photos(), 12, size=16, seed=3, identity_fraction=0.25)
    b = PairPool.from_photos(photos(), 12, size=16, seed=3, identity_fraction=0.25)
    c = PairPool.from_photos(photos(), 12, size=16, seed=4, identity_fraction=0.25)
    assert a.inputs.shape == a.targets.shape == (12, 3, 16, 16) and a.inputs.dtype == torch.uint8
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets) and a.records == b.records
    assert not torch.equal(a.inputs, c.inputs)
    assert len(a) == 12 and a.size == 16 and a.paired
    for i, rec in enumerate(a.records):  # untouched views are identical pairs, detuned ones differ
        same = torch.equal(a.inputs[i], a.targets[i])
        assert same == (rec["class"] == "correct") or rec["class"] == "mixed" and same is False


def test_from_photos_refuses_photos_on_the_0_255_scale():
    photo = photos(1)[0]
    with pytest.raises(TypeError, match="photo 0 is torch.uint8"):  # it used to make an all-white pool
        PairPool.from_photos([(photo * 255).to(torch.uint8)], 2, size=8)
    with pytest.raises(ValueError, match="photo 1 reaches"):
        PairPool.from_photos([photo, photo * 255], 2, size=8)


def test_get_returns_floats_on_device(device):
    pool = PairPool.from_photos(photos(1), 4, size=8)
    x, t = pool.get([0, 3], device)
    assert x.shape == (2, 3, 8, 8) and x.dtype == torch.float32 and x.device == device
    assert torch.equal(x, pool.inputs[[0, 3]].to(device).float() / 255)


def test_from_pairs_and_unpaired():
    pairs = [(random_image(b=1, h=20, w=30)[0], random_image(b=1, h=20, w=30, seed=1)[0])]
    pool = PairPool.from_pairs(pairs, size=8)
    assert pool.paired and pool.inputs.shape == (1, 3, 8, 8)
    unpaired = PairPool.from_pairs([(pairs[0][0], None)], size=8)
    assert not unpaired.paired and unpaired.get([0])[1] is None
    with pytest.raises(ValueError, match="every pair"):
        PairPool.from_pairs([(pairs[0][0], None), pairs[0]])


def test_bad_pools():
    with pytest.raises(ValueError):
        PairPool(torch.zeros(2, 3, 4, 4))  # not uint8
    with pytest.raises(ValueError):
        PairPool(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError):
        PairPool(torch.zeros(0, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="scheme"):
        PairPool.from_photos(photos(1), 2, scheme="chaos")
    with pytest.raises(ValueError, match="square views"):  # the environment then declared the width as its size
        PairPool(torch.zeros(2, 3, 16, 24, dtype=torch.uint8))
    for kwargs, words in [({"count": 0}, "count and size must be >= 1"),
                          ({"identity_fraction": 2.0}, r"identity_fraction must be in \[0, 1\]"),
                          ({"crop_scale": (2, 3)}, "crop_scale must be")]:
        with pytest.raises(ValueError, match=words):
            PairPool.from_photos(photos(1), **{"count": 2, **kwargs})


def test_photos_that_are_not_floats_in_0_1_are_refused_by_both_constructors():
    """from_pairs made uint8 or 0-255 photos white, and a NaN photo passed from_photos as black views (found by a
    review of the API)."""
    good = photos(1)[0]
    for bad, error, words in [(torch.full((3, 32, 32), 200, dtype=torch.uint8), TypeError, "uint8.*divide by 255"),
                              (torch.rand(3, 32, 32) * 255, ValueError, "reaches .*divide by 255"),
                              (torch.full((3, 32, 32), float("nan")), ValueError, "not finite"),
                              (torch.rand(32, 32), ValueError, "3 x H x W")]:
        with pytest.raises(error, match=f"from_photos: photo 0 .*{words}"):
            PairPool.from_photos([bad], 2, size=16)
        with pytest.raises(error, match=f"from_pairs: input 0 .*{words}"):
            PairPool.from_pairs([(bad, None)], size=16)
        with pytest.raises(error, match=f"from_pairs: target 0 .*{words}"):
            PairPool.from_pairs([(good, bad)], size=16)
    with pytest.raises(ValueError, match="from_pairs: size must be >= 1, got 0"):  # a torch RuntimeError
        PairPool.from_pairs([(good, None)], size=0)
    with pytest.raises(ValueError, match="pair 0's input is 56x40 and its target 40x56"):
        PairPool.from_pairs([(good, good.transpose(1, 2).contiguous())], size=16)


def test_crop_and_view():
    g = torch.Generator().manual_seed(0)
    p = photos(1)[0]
    for _ in range(20):
        c = random_crop(p, g, (0.25, 1.0))
        assert 8 <= c.shape[1] <= 40 and 8 <= c.shape[2] <= 56
    v = to_view(p.unsqueeze(0), 16)
    assert v.shape == (1, 3, 16, 16) and 0 <= v.min() and v.max() <= 1
