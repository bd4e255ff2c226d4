import json

import pytest
import torch

from conftest import random_image
from deepexpose.data.detune import (
    AFIFI_EV,
    ATTRIBUTES,
    CORRECT,
    SINGLE_ERROR_CLASSES,
    Detuned,
    afifi_exposures,
    detune_single,
    random_edit,
)
from deepexpose.filters import FilterPipeline, luminance, srgb_to_linear


def test_class_list_follows_seed_001():
    assert len(ATTRIBUTES) == 8 and len(SINGLE_ERROR_CLASSES) == 24
    assert len(set(SINGLE_ERROR_CLASSES)) == 24 and CORRECT not in SINGLE_ERROR_CLASSES
    for a in ATTRIBUTES:
        assert [c for c in SINGLE_ERROR_CLASSES if c.startswith(a.name + "_")] == [
            f"{a.name}_33", f"{a.name}_66", f"{a.name}_100"]


@pytest.mark.parametrize("cls", SINGLE_ERROR_CLASSES)
def test_each_class_changes_the_image_and_is_recorded(cls):
    x = random_image(b=1, h=8, w=8, low=0.2, high=0.8)
    out, rec = detune_single(x, cls)
    assert out.shape == x.shape and (out - x).abs().max() > 0.01
    assert rec["class"] == cls and json.loads(json.dumps(rec)) == rec
    # the record is enough to reproduce the edit with the filter pipeline
    (filt,) = rec["edits"]
    pipe = FilterPipeline([filt])
    torch.testing.assert_close(pipe(x, pipe.action_from_description(rec["edits"])), out)


def test_levels_grow_with_percentage():
    x = random_image(b=1, low=0.2, high=0.8)
    for a in ATTRIBUTES:
        d = [(detune_single(x, f"{a.name}_{p}")[0] - x).abs().mean() for p in (33, 66, 100)]
        assert d[0] < d[1] < d[2], a.name


def test_class_semantics():
    grey = torch.full((1, 3, 4, 4), 0.5)
    assert detune_single(grey, "too_dark_100")[0].mean() < 0.4
    g = detune_single(grey, "too_green_66")[0][0, :, 0, 0]
    assert g[1] > g[0] and g[1] > g[2]
    o = detune_single(grey, "too_orange_66")[0][0, :, 0, 0]
    assert o[0] > o[1] > o[2]
    b = detune_single(grey, "too_blue_66")[0][0, :, 0, 0]
    assert b[2] > b[1] > b[0]
    colour = random_image(b=1, low=0.2, high=0.8)
    washed = detune_single(colour, "saturation_too_low_100")[0]
    assert (washed - luminance(washed)).abs().mean() < (colour - luminance(colour)).abs().mean()
    crushed = detune_single(random_image(b=1), "black_point_too_high_100")[0]
    assert crushed.min() == 0 and (crushed == 0).float().mean() > 0.1


def test_correct_and_unknown_class():
    x = random_image(b=1)
    out, rec = detune_single(x, CORRECT)
    assert torch.equal(out, x) and rec["class"] == CORRECT
    with pytest.raises(ValueError, match="too_dark_33"):
        detune_single(x, "too_purple_50")


def test_random_edit_is_seeded_and_recorded():
    x = random_image(b=1, h=16, w=16)
    a, ra = random_edit(x, torch.Generator().manual_seed(3))
    b, rb = random_edit(x, torch.Generator().manual_seed(3))
    c, rc = random_edit(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and ra == rb and not torch.equal(a, c)
    assert json.loads(json.dumps(ra)) == ra and ra["scheme"] == "mixed"
    assert a.min() >= 0 and a.max() <= 1
    # without noise the record reproduces the edit exactly
    d, rd = random_edit(x, torch.Generator().manual_seed(5), noise=0.0, p_each=1.0)
    pipe = FilterPipeline(list(rd["edits"]))
    torch.testing.assert_close(pipe(x, pipe.action_from_description(rd["edits"])), d)
    with pytest.raises(ValueError, match="one image"):
        random_edit(random_image(b=2), torch.Generator())


def test_random_edits_vary_widely():
    x = random_image(b=1, h=8, w=8, low=0.3, high=0.7)
    means = torch.stack([random_edit(x, torch.Generator().manual_seed(s))[0].mean() for s in range(40)])
    assert means.std() > 0.05


def test_afifi_exposures():
    x = random_image(b=2, low=0.2, high=0.6)
    out, recs = afifi_exposures(x)
    assert out.shape == (10, 3, 8, 10) and [r["edits"]["exposure"]["ev"] for r in recs] == list(AFIFI_EV)
    assert torch.equal(out[4:6], x)  # 0 EV
    lin = srgb_to_linear(out[6:8])   # +1 EV doubles linear light where nothing clips
    torch.testing.assert_close(lin, (2 * srgb_to_linear(x)).clamp(max=1))


class Photos(torch.utils.data.Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        return {"image": random_image(b=1, h=8, w=8, seed=i)[0], "name": f"p{i}"}


@pytest.mark.parametrize("scheme", Detuned.SCHEMES)
def test_detuned_dataset(scheme):
    ds = Detuned(Photos(), scheme, seed=7, identity_fraction=0.3, repeats=4)
    assert len(ds) == 12
    items = [ds[i] for i in range(12)]
    again = Detuned(Photos(), scheme, seed=7, identity_fraction=0.3, repeats=4)
    for i, it in enumerate(items):
        assert torch.equal(it["input"], again[i]["input"]) and it["detuning"] == again[i]["detuning"]
        assert it["input"].shape == it["target"].shape == (3, 8, 8) and it["name"] == f"p{i % 3}"
        assert it["detuning"]["index"] == i and it["detuning"]["seed"] == 7
    untouched = [it for it in items if it["detuning"]["class"] == CORRECT]
    assert 0 < len(untouched) < 12
    for it in untouched:
        assert torch.equal(it["input"], it["target"])
    other_seed = Detuned(Photos(), scheme, seed=8, identity_fraction=0.3, repeats=4)
    assert any(not torch.equal(items[i]["input"], other_seed[i]["input"]) for i in range(12))
    with pytest.raises(IndexError):
        ds[12]


def test_identity_fraction_bounds_and_scheme():
    assert all(Detuned(Photos(), "single", identity_fraction=1.0)[i]["detuning"]["class"] == CORRECT
               for i in range(3))
    with pytest.raises(ValueError):
        Detuned(Photos(), "single", identity_fraction=1.5)
    with pytest.raises(ValueError, match="scheme"):
        Detuned(Photos(), "chaos")


def test_basic_edit_touches_only_the_four_errors():
    from deepexpose.data.detune import BASIC_RANGES, basic_edit

    assert {f for f, *_ in BASIC_RANGES} == {"white_balance", "exposure", "contrast", "saturation"}
    x = random_image(b=1, h=8, w=8, low=0.2, high=0.8)
    seen = set()
    for s in range(30):
        out, rec = basic_edit(x, torch.Generator().manual_seed(s))
        assert rec["scheme"] == "basic" and rec["noise_sigma"] == 0.0
        seen |= set(rec["edits"])
        pipe = FilterPipeline(list(rec["edits"]) or ["exposure"])
        torch.testing.assert_close(pipe(x, pipe.action_from_description(rec["edits"])), out)
    assert seen == {"white_balance", "exposure", "contrast", "saturation"}
