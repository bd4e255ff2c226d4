"""The correction methods behind ``enhance``: plans, rendering, strength, LUTs and loading errors."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from deepexpose.agents.checkpoint import save_checkpoint
from deepexpose.methods import METHODS, blend, bundled_model, load_method


def photo_u8(h=40, w=56, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.5 * x + 0.1, 0.4 * y + 0.1, 0.3 * (x + y) / 2 + 0.1], axis=2)
    return (np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture
def classifier_model(tmp_path):
    from deepexpose.agents.classifier import CLASSES, INVERSES, KIND, ClassifierConfig, ClassifierNet

    torch.manual_seed(0)
    net = ClassifierNet(size=32, width=4)
    meta = {"kind": KIND, "classes": list(CLASSES), "model": net.config(),
            "config": dataclasses.asdict(ClassifierConfig(size=32, width=4)), "inverses": INVERSES}
    return save_checkpoint(tmp_path / "classifier.safetensors", modules={"classifier": net}, meta=meta)


@pytest.fixture
def histogram_model(tmp_path):
    from deepexpose.agents.histogram import HistogramConfig, HistogramNet, save_histogram

    torch.manual_seed(0)
    net = HistogramNet(bins=8, width=4)
    return save_histogram(tmp_path / "histogram.safetensors", net, HistogramConfig(bins=8, width=4, size=32))


def test_registry_and_errors():
    assert {"agent", "classic", "identity", "classifier", "histogram"} <= set(METHODS)
    with pytest.raises(ValueError, match="unknown --method"):
        load_method("nope")
    with pytest.raises(ValueError, match="no model file; drop its --model .enhance. or its --models entry"):
        load_method("classic", "some/model.safetensors")
    with pytest.raises(FileNotFoundError, match="bundled"):
        bundled_model("no-such-baseline")


def test_identity_and_classic_plans():
    px = photo_u8()
    ident = load_method("identity").plan(px)
    assert np.array_equal(ident.render(px, 1.0), px)
    classic = load_method("classic").plan(px)
    assert set(classic.edit) >= {"local_exposure", "white_balance", "exposure"}
    out = classic.render(px, 1.0)
    assert out.dtype == np.uint8 and out.shape == px.shape and not np.array_equal(out, px)
    assert np.abs(classic.render(px, 0.0).astype(int) - px).max() <= 1
    lut = classic.lut(9)
    assert lut.size == 9


def test_classifier_method(classifier_model):
    m = load_method("classifier", classifier_model)
    px = photo_u8()
    plan = m.plan(px)
    assert m.view == 32 and plan.edit["local_exposure"]["ev"] == [0.0, 0.0, 0.0]
    assert {"white_balance", "exposure", "levels", "contrast", "saturation"} <= set(plan.edit)
    out = plan.render(px, 1.0)
    assert out.shape == px.shape and out.dtype == np.uint8
    # the rendered edit is the classifier's own correction of the photo
    from deepexpose.agents.classifier import ClassifierCorrector
    ref, _ = ClassifierCorrector.load(classifier_model).enhance(torch.from_numpy(px).permute(2, 0, 1)[None] / 255)
    ref = (ref[0].permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(out.astype(float) - ref).max() <= 1.0
    assert plan.params["method"] == "classifier" and plan.params["predicted_class"] in plan.params["top_classes"]
    assert abs(sum(plan.params["top_classes"].values())) <= 1.0 + 1e-6


def test_histogram_method(histogram_model):
    m = load_method("histogram", histogram_model)
    px = photo_u8()
    plan = m.plan(px)
    assert plan.edit is None and not m.parametric and m.has_lut
    out = plan.render(px, 1.0)
    assert out.shape == px.shape and out.dtype == np.uint8
    half = plan.render(px, 0.5).astype(float)
    assert np.abs(half - (px + 0.5 * (out.astype(float) - px))).max() <= 1.0
    assert plan.params["method"] == "histogram" and "predicted_mean_rgb" in plan.params
    assert plan.lut(5).size == 5


@pytest.fixture
def cgan_model(tmp_path):
    from deepexpose.agents.cgan import KIND, CganConfig, build_generator, generator_meta

    torch.manual_seed(0)
    cfg = CganConfig(size=32, width=4)
    gen = build_generator(cfg)
    for p in gen.parameters():  # the residual output starts at zero: make it do something
        torch.nn.init.normal_(p, std=0.05)
    meta = {"kind": KIND, "generator": generator_meta(gen), "config": dataclasses.asdict(cfg)}
    return save_checkpoint(tmp_path / "cgan.safetensors", modules={"generator": gen}, meta=meta)


def test_cgan_method(cgan_model):
    m = load_method("cgan", cgan_model)
    px = photo_u8(37, 45)  # odd sizes: padded and cropped back
    plan = m.plan(px)
    out = plan.render(px, 1.0)
    assert out.shape == px.shape and out.dtype == np.uint8 and not np.array_equal(out, px)
    assert np.array_equal(plan.render(px, 0.0), px)
    assert plan.lut is None and not m.has_lut


@pytest.mark.parametrize("method", ["cgan", "histogram"])
def test_painting_methods_keep_16_bit_and_float_input(method, cgan_model, histogram_model):
    m = load_method(method, cgan_model if method == "cgan" else histogram_model)
    px8 = photo_u8(37, 45)
    px16 = px8.astype(np.uint16) * 257
    out8, out16 = m.plan(px8).render(px8, 1.0), m.plan(px16).render(px16, 1.0)
    assert out16.dtype == np.uint16 and len(np.unique(out16)) > len(np.unique(out8))  # finer than 8 bits
    assert np.abs(out16 / 257 - out8).max() <= 1.0  # the same correction
    outf = m.plan(px8 / np.float32(255)).render(px8 / np.float32(255), 1.0)
    assert outf.dtype == np.float32 and np.abs(outf * 255 - out8).max() <= 1.0


def test_a_cgan_trained_on_frame_stacks_is_refused(tmp_path):
    from deepexpose.agents.cgan import KIND, CganConfig, build_generator, generator_meta

    cfg = CganConfig(size=32, width=4, frames=3)
    gen = build_generator(cfg)
    meta = {"kind": KIND, "generator": generator_meta(gen), "config": dataclasses.asdict(cfg)}
    path = save_checkpoint(tmp_path / "cgan3.safetensors", modules={"generator": gen}, meta=meta)
    with pytest.raises(ValueError, match="stacks of frames"):
        load_method("cgan", path)


def test_blend():
    a = np.array([[[0, 100, 255]]], np.uint8)
    b = np.array([[[255, 200, 0]]], np.uint8)
    assert np.array_equal(blend(a, b, 1.0), b)
    assert np.array_equal(blend(a, b, 0.0), a)
    assert np.array_equal(blend(a, b, 0.5), np.array([[[128, 150, 128]]], np.uint8))
    f = blend(a.astype(np.float32) / 255, b.astype(np.float32) / 255, 0.25)
    assert f.dtype == np.float32


def test_parameter_count_is_the_number_of_learned_weights():
    from deepexpose.methods import load_method

    assert load_method("identity").parameter_count() == load_method("classic").parameter_count() == 0
    agent = load_method("agent")
    assert agent.parameter_count() == sum(p.numel() for p in agent.policy.model.parameters()) > 1000
    cgan = load_method("cgan")
    assert cgan.parameter_count() == sum(p.numel() for p in cgan.corrector.generator.parameters())
    assert cgan.parameter_count() != agent.parameter_count()
    for name in ("classifier", "histogram"):
        assert load_method(name).parameter_count() > 1000


def test_agent_method_consensus_and_single_view(agent_model):
    from deepexpose.agents.policy import CONSENSUS_CROP, CONSENSUS_SHRINK
    from deepexpose.render import crop_views, make_view

    px = photo_u8(90, 120, seed=3)
    single = load_method("agent", agent_model, consensus=False)
    agreed = load_method("agent", agent_model)  # the default: consensus of the whole photo and its crops
    assert single.describe()["views"] == "whole photo"
    assert agreed.describe() | {"model": ""} == {"method": "agent", "model": "", "views": "consensus",
                                                 "crop": CONSENSUS_CROP, "shrink": CONSENSUS_SHRINK}
    one = single.plan(px)
    assert one.edit == single.policy.choose(make_view(px, 64))[0]
    plan = agreed.plan(px)
    view = make_view(px, 64)
    views = torch.cat([view, crop_views(px, 64, CONSENSUS_CROP)])
    assert plan.edit == agreed.policy.consensus(views, CONSENSUS_SHRINK)
    assert plan.edit != one.edit and plan.params["views"] == "consensus"
    out = plan.render(px, 1.0)
    assert out.shape == px.shape and out.dtype == np.uint8
    with pytest.raises(TypeError):
        load_method("classic", consensus=False)  # not an option of the other methods
    from deepexpose.methods import view_options

    assert view_options("agent", True) == {"consensus": False, "untouched_within": 0.0}
    assert view_options("agent", False, 37.0) == {"consensus": True, "untouched_within": 37.0}
    assert view_options("classic", True) == view_options("cgan", False) == {}
    for bad in ({"crop": 0.0}, {"crop": 1.5}, {"shrink": -1.0}, {"shrink": float("nan")}):
        with pytest.raises(ValueError, match="crop|shrink"):
            load_method("agent", agent_model, **bad)  # refused when loaded, not photo by photo


def test_agent_method_uses_the_models_own_consensus_setting(agent_model, tmp_path):
    from deepexpose.agents.policy import export_agent
    from deepexpose.render import crop_views, make_view

    own = export_agent(agent_model, tmp_path / "own.safetensors", consensus={"crop": 0.5, "shrink": 0.25})
    agent = load_method("agent", own)
    assert (agent.crop, agent.shrink) == (0.5, 0.25)
    assert agent.describe()["crop"] == 0.5 and agent.describe()["shrink"] == 0.25
    px = photo_u8(90, 120, seed=4)
    views = torch.cat([make_view(px, 64), crop_views(px, 64, 0.5)])
    assert agent.plan(px).edit == agent.policy.consensus(views, 0.25)
    assert agent.plan(px).edit != load_method("agent", agent_model).plan(px).edit
    given = load_method("agent", own, crop=0.8, shrink=1.0)  # explicit settings win
    assert (given.crop, given.shrink) == (0.8, 1.0)
    # a malformed setting is refused when it would be used, not when it is not
    doc = json.loads(own.with_suffix(".json").read_text())
    doc["meta"]["consensus"] = {"crop": 0.5, "shrinkage": 1}
    own.with_suffix(".json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="unknown keys"):
        load_method("agent", own)
    assert load_method("agent", own, consensus=False).describe()["views"] == "whole photo"
    assert load_method("agent", own, crop=0.6, shrink=1.0, gains={}).crop == 0.6


def test_agent_method_uses_the_models_own_gains(agent_model, tmp_path):
    from deepexpose.agents.policy import export_agent
    from deepexpose.render import crop_views, make_view

    own = export_agent(agent_model, tmp_path / "own.safetensors",
                       consensus={"crop": 0.5, "shrink": 0.25, "gains": {"white_balance": 2}})
    agent = load_method("agent", own)
    assert agent.gains == {"white_balance": 2.0} and agent.describe()["gains"] == {"white_balance": 2.0}
    px = photo_u8(90, 120, seed=4)
    views = torch.cat([make_view(px, 64), crop_views(px, 64, 0.5)])
    assert agent.plan(px).edit == agent.policy.consensus(views, 0.25, {"white_balance": 2.0})
    assert agent.plan(px).edit != agent.policy.consensus(views, 0.25)
    plain = load_method("agent", own, gains={})  # explicit settings win
    assert plain.gains == {} and "gains" not in plain.describe() and plain.plan(px).edit == \
        agent.policy.consensus(views, 0.25)
    assert "gains" not in load_method("agent", own, consensus=False).describe()  # the whole-photo view: no gains
    with pytest.raises(ValueError, match="unknown filters"):
        load_method("agent", own, gains={"sharpen": 2})


def test_a_plan_masks_on_the_view_it_chose_on_and_prepares_ahead(agent_model, monkeypatch):
    import deepexpose.render as render_module
    from deepexpose.render import make_view, render_edit

    px = photo_u8(160, 200, seed=5)
    small = np.ascontiguousarray(px[::4, ::4])  # a reduced copy of the same photo
    agent = load_method("agent", agent_model)
    plan = agent.plan(small)
    assert agent.preview_side == 4 * agent.view
    assert any(e != 0 for e in plan.edit["local_exposure"]["ev"])  # local exposures: the masks matter
    setup = {"view": agent.view, "segmentation": agent.segmentation, "refine_radius": agent.refine_radius,
             "filters": agent.filters}
    expected = render_edit(px, plan.edit, view_image=make_view(small, agent.view), **setup)
    assert not np.array_equal(expected, render_edit(px, plan.edit, **setup))  # another view, other masks
    plan.prepare(px.shape[:2], px.dtype)
    with monkeypatch.context() as m:
        m.setattr(render_module, "prepare_edit", lambda *a, **k: pytest.fail("prepared again"))
        np.testing.assert_array_equal(plan.render(px, 1.0), expected)
    np.testing.assert_array_equal(plan.render(small, 1.0), render_edit(small, plan.edit, **setup))
    bare = agent.plan_from_edit(plan.edit)  # chosen on no view: masks from the pixels rendered
    assert bare.prepare is None
    np.testing.assert_array_equal(bare.render(px, 1.0), render_edit(px, plan.edit, **setup))
    assert load_method("classic").plan(px).prepare is not None
    from deepexpose.methods import CganMethod, HistogramMethod

    assert not hasattr(HistogramMethod, "preview_side") and not hasattr(CganMethod, "preview_side")


def test_agent_leaves_a_photo_untouched_when_its_edit_is_small(agent_model):
    from deepexpose.apply import apply_edit
    from deepexpose.metrics import capped_psnr
    from deepexpose.render import make_view

    px = photo_u8(90, 120, seed=3)
    plain = load_method("agent", agent_model)
    edit = plain.plan(px).edit
    view = make_view(px, 64)
    change = plain.change(view, edit)
    assert change == capped_psnr(apply_edit(view, edit, view=64), view) and 10 < change < 100
    assert not np.array_equal(plain.plan(px).render(px, 1.0), px)
    # a threshold the edit stays within (its change is above it): the photo comes back bit for bit
    gated = load_method("agent", agent_model, untouched_within=change - 0.01)
    plan = gated.plan(px)
    assert np.array_equal(plan.render(px, 1.0), px) and plan.params["untouched_within"] == change - 0.01
    assert plan.edit == {"local_exposure": {"ev": [0.0, 0.0, 0.0]}}
    # one it does not stay within: the edit is applied as without a threshold
    kept = load_method("agent", agent_model, consensus=True, untouched_within=change + 0.01).plan(px)
    assert kept.edit == edit and np.array_equal(kept.render(px, 1.0), plain.plan(px).render(px, 1.0))
    assert "untouched_within" not in plain.describe()
    with pytest.raises(ValueError, match="untouched-within"):
        load_method("agent", agent_model, untouched_within=-1.0)
