import dataclasses
import json
import time
import warnings

import pytest
import torch

from deepexpose.agents.cgan import (LOSSES, CganConfig, CganCorrector, PatchDiscriminator, UNetGenerator,
                                    adversarial_loss, augment, blend_frames, build_data, build_discriminator,
                                    build_generator, check_config, evaluate_cgan, frame_flicker, load_cgan, make_pool,
                                    pixel_loss, receptive_field, run_oversampled, train_cgan, unet_depth)
from deepexpose.agents.checkpoint import save_checkpoint


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small ops on a shared machine: one thread is fastest
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("hw", [(32, 32), (37, 51), (5, 7), (1, 1), (70, 16)])
@pytest.mark.parametrize("frames, norm", [(1, "instance"), (3, "batch"), (1, "none")])
def test_generator_keeps_any_size(hw, frames, norm):
    g = UNetGenerator(frames, depth=4, width=4, norm=norm).eval()
    out = g(torch.rand(2, 3 * frames, *hw) * 2 - 1)
    assert out.shape == (2, 3, *hw) and torch.isfinite(out).all()


def test_unet_reaches_one_pixel_with_skips():
    assert unet_depth(256) == 8 and unet_depth(64) == 6
    g = UNetGenerator(depth=unet_depth(256), width=2).eval()
    sizes = []
    for down in g.downs:
        down.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[-2:])))
    g(torch.rand(1, 3, 256, 256))
    assert sizes[-1] == (1, 1) and sizes[0] == (128, 128)
    # every decoder level but the innermost takes the level below concatenated with the encoder's skip features
    for i in range(g.depth - 1):
        encoder_conv = g.downs[i] if i == 0 else g.downs[i][1]
        assert g.ups[i][1].in_channels == 2 * encoder_conv.out_channels
    # a skip carries fine detail: a one-pixel change of the input changes the output at that pixel
    x = torch.zeros(1, 3, 64, 64)
    g6 = UNetGenerator(depth=6, width=4, residual=False).eval()
    y = x.clone()
    y[..., 20, 30] = 1
    assert (g6(y) - g6(x)).abs()[..., 20, 30].sum() > 0


def test_default_generator_is_small():
    for size in (64, 256):
        g = build_generator(CganConfig(size=size))
        assert sum(p.numel() for p in g.parameters()) * 4 < 5e6


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_patchgan_receptive_field(layers):
    assert [receptive_field(n) for n in range(1, 6)] == [16, 34, 70, 142, 286]
    d = PatchDiscriminator(6, layers=layers, width=4, norm="none").double()
    size = 128
    x = torch.rand(1, 3, size, size, dtype=torch.float64, requires_grad=True)
    logits = d(x, torch.rand(1, 3, size, size, dtype=torch.float64))
    n = size // 2 ** layers - 2
    assert logits.shape == (1, 1, n, n)
    logits[0, 0, n // 2, n // 2].backward()
    rows = x.grad.abs().sum(dim=(0, 1, 3)).nonzero()
    cols = x.grad.abs().sum(dim=(0, 1, 2)).nonzero()
    assert int(rows[-1] - rows[0]) + 1 == d.receptive_field == int(cols[-1] - cols[0]) + 1


@pytest.mark.parametrize("loss", LOSSES)
def test_each_loss_gives_finite_gradients(loss):
    torch.manual_seed(0)
    g, d = UNetGenerator(depth=4, width=4), PatchDiscriminator(6, layers=1, width=4)
    x, t = torch.rand(4, 3, 16, 16) * 2 - 1, torch.rand(4, 3, 16, 16) * 2 - 1
    fake = g(x)
    loss_d = adversarial_loss(d(x, t), True, loss) + adversarial_loss(d(x, fake.detach()), False, loss)
    loss_d.backward()
    loss_g = adversarial_loss(d(x, fake), True, loss) + 100 * pixel_loss(fake, t, loss)
    loss_g.backward()
    for net in (g, d):
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(gr).all() for gr in grads)
    assert adversarial_loss(torch.zeros(3), True, "bce").item() == pytest.approx(0.6931, abs=1e-4)
    assert adversarial_loss(torch.ones(3), True, "lsgan").item() == 0
    assert pixel_loss(torch.zeros(2), torch.full((2,), 0.5), "mse").item() == pytest.approx(0.25)
    assert pixel_loss(torch.zeros(2), torch.full((2,), 0.5), "bce").item() == pytest.approx(0.5)


def _tiny(tmp_path, **kw):
    small = dict(size=16, pool_size=16, steps=3, batch=4, width=4, d_width=4, patch=16, eval_size=4, eval_photos=1)
    return CganConfig(**{**small, **kw}, out=str(tmp_path), progress=False)


@pytest.mark.parametrize("frames", [1, 3])
def test_training_writes_a_checkpoint_that_reloads_identically(tmp_path, frames):
    cfg = _tiny(tmp_path, frames=frames, neighbour_flip=0.5, loss="lsgan")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train_cgan(cfg)
    single = [str(w.message) for w in caught if "single-frame" in str(w.message)]
    assert single == ([] if frames == 1 else ["--frames 3: deepexpose enhance and evaluate run single-frame cGANs "
                                              "only; this model is for CganCorrector.enhance on stacks of frames "
                                              "(seed 001's study of flicker)"])
    assert result["steps"] == 3 and {"psnr", "input_psnr", "delta_e2000"} <= set(result["view"])
    assert json.loads((tmp_path / "eval.json").read_text())["view"] == result["view"]
    meta = json.loads((tmp_path / "cgan.json").read_text())["meta"]
    saved = dataclasses.asdict(dataclasses.replace(cfg, data="demo"))  # --data auto, no library in the tests
    assert meta["config"] == saved and meta["generator"]["frames"] == frames
    corrector = load_cgan(tmp_path / "cgan.safetensors")
    _, views, photos = build_data(cfg)
    x, t = views.get(range(len(views)))
    pairs = [(x[i:i + 1], t[i:i + 1], views.records[i]) for i in range(len(views))]
    assert evaluate_cgan(corrector, pairs) == result["view"]  # same outputs after reloading
    assert evaluate_cgan(corrector, photos) == result["photo"]
    out, info = corrector.enhance(torch.rand(1, 3, 23, 41), oversample=2)
    assert out.shape == (1, 3, 23, 41) and 0 <= out.min() and out.max() <= 1
    assert info["processed"] == [46, 82] and info["oversample"] == 2 and info["frames"] == frames
    json.dumps(info)


def test_pool_stacks_are_aligned_with_targets():
    photo = torch.rand(3, 40, 50)
    x, t, records = make_pool([photo], 3, size=16, frames=3, motion=2, identity_fraction=1.0)
    assert x.shape == (3, 9, 16, 16) and t.shape == (3, 3, 16, 16) and x.dtype == torch.uint8
    assert all(r["class"] == "correct" for r in records)
    assert torch.equal(x[:, 3:6], t)  # the middle frame is the current one
    pair = torch.cat([photo, 1 - photo])
    x, t, _ = make_pool([pair], 2, size=8, scheme=None)
    assert torch.equal(x.int() + t.int(), torch.full_like(x.int(), 255))


def test_augment_flips_both_and_jitters_input_only():
    g = torch.Generator().manual_seed(0)
    x, t = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    cfg = CganConfig(flip=1.0, jitter=0.0)
    xa, ta = augment(x, t, g, cfg)
    assert torch.equal(xa, x.flip(-1)) and torch.equal(ta, t.flip(-1))
    xa, ta = augment(x, t, g, CganConfig(flip=0.0, jitter=1.0, jitter_strength=0.3))
    assert torch.equal(ta, t) and not torch.equal(xa, x) and 0 <= xa.min() and xa.max() <= 1


def test_oversampling_runs_the_network_at_twice_the_size():
    seen = []

    def fn(z):
        seen.append(tuple(z.shape[-2:]))
        return z

    const = torch.full((1, 3, 9, 13), 0.3)
    torch.testing.assert_close(run_oversampled(fn, const, 2), const)
    assert seen == [(18, 26)]
    smooth = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(1, 3, 16, 32)
    assert (run_oversampled(fn, smooth, 2) - smooth).abs().max() < 0.02
    assert run_oversampled(fn, smooth, 1) is smooth
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="oversample"):
            run_oversampled(fn, smooth, bad)


def test_frame_blending():
    const = torch.full((6, 3, 4, 4), 0.4)
    torch.testing.assert_close(blend_frames(const, 2), const)
    seq = torch.tensor([0.0, 3.0, 6.0, 9.0]).view(4, 1)
    torch.testing.assert_close(blend_frames(seq, 1), torch.tensor([1.5, 3.0, 6.0, 7.5]).view(4, 1))
    assert torch.equal(blend_frames(seq, 0), seq)
    noisy = torch.rand(1, 3, 8, 8) + 0.2 * torch.rand(20, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    assert frame_flicker(blend_frames(noisy, 2)) < 0.5 * frame_flicker(noisy)
    as_list = blend_frames(list(const), 1)
    assert isinstance(as_list, list) and len(as_list) == 6
    with pytest.raises(ValueError, match="radius"):
        blend_frames(const, -1)
    with pytest.raises(ValueError, match="at least one"):
        blend_frames([], 1)


def test_sequence_enhancement():
    corrector = CganCorrector(UNetGenerator(3, depth=3, width=4))
    frames = torch.rand(5, 3, 12, 20)
    out, info = corrector.enhance_sequence(frames, blend=1)
    assert out.shape == frames.shape and info["sequence"] == 5 and info["blend"] == 1
    single, _ = corrector.enhance_sequence(frames[:1])
    still, _ = corrector.enhance(frames[:1])
    torch.testing.assert_close(single, still)  # one frame = a still = its own neighbours


def test_the_smallest_size_of_each_patch_trains_and_one_below_it_is_refused(tmp_path):
    from deepexpose.agents.cgan import PATCHES, smallest_size

    for patch in (16, 34, 70):
        size = smallest_size(patch)
        cfg = CganConfig(size=size, patch=patch, depth=unet_depth(size))
        check_config(cfg)
        x = torch.rand(2, 3, size, size)
        assert build_discriminator(cfg)(x, x).shape[-2:] == (2, 2) and build_generator(cfg)(x).shape == x.shape
        with pytest.raises(ValueError, match="too small"):
            check_config(CganConfig(size=size // 2, patch=patch))
    assert [smallest_size(p) for p in PATCHES] == [8, 16, 32, 64, 128]


def test_bad_arguments(tmp_path):
    for bad, match in [({"loss": "l2"}, "loss"), ({"frames": 2}, "odd"), ({"patch": 50}, "patch"),
                       ({"size": 48}, "power of two"), ({"data": "nope"}, "data"), ({"norm": "group"}, "norm"),
                       ({"dropout": 1.5}, "dropout"), ({"crop_scale": 0.0}, "crop-scale"), ({"width": 0}, "width"),
                       ({"scheme": "x"}, "scheme"),
                       ({"data": "fivek", "root": "x", "train_fraction": 0.5}, "train-fraction"),
                       # found by review: a traceback of the allocator (terabytes) and one of instance norm
                       ({"size": 64, "depth": 20}, r"--depth must be at most 6, log2\(--size 64\)"),
                       ({"size": 16}, r"--size 16 is too small for --patch 70: its PatchGAN needs views of at least "
                                      r"32 pixels \(--patch 16 from --size 8, --patch 34 from --size 16\)"),
                       ({"size": 4, "patch": 16}, r"--size 4 is too small for --patch 16: .* at least 8 pixels$")]:
        with pytest.raises(ValueError, match=match):
            check_config(CganConfig(**bad))
    g = UNetGenerator(3, depth=3, width=4)
    with pytest.raises(ValueError, match="9 x H x W"):
        g(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="odd"):
        UNetGenerator(2)
    with pytest.raises(ValueError, match="B x 3 x H x W"):
        CganCorrector(g).enhance(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="loss"):
        adversarial_loss(torch.zeros(1), True, "hinge")
    path = save_checkpoint(tmp_path / "other.safetensors", modules={"net": torch.nn.Linear(2, 2)}, meta={"x": 1})
    with pytest.raises(ValueError, match="not a cGAN"):
        load_cgan(path)


def test_paired_folder_data(tmp_path):
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for sub in ("input", "target"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    for i in range(11):
        target = torch.rand(3, 24, 32, generator=g)
        for sub, img in (("input", target * 0.5), ("target", target)):
            array = (img.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
            Image.fromarray(array).save(tmp_path / "data" / sub / f"{i:02d}.png")
    cfg = _tiny(tmp_path / "run", data="pairs", root=str(tmp_path / "data"), pool_size=15, steps=2)
    (x, t, _), views, photos = build_data(cfg)
    assert x.shape == (15, 3, 16, 16) and t.shape == (15, 3, 16, 16) and len(views) == 1 and len(photos) == 1
    assert (x.float() - t.float() / 2).abs().max() <= 1  # inputs are the darkened targets, crops aligned
    result = train_cgan(cfg)
    assert result["steps"] == 2 and result["photo"]["count"] == 1


def test_paired_folder_leaves_out_inputs_without_target_and_unreadable_pairs_with_a_warning(tmp_path):
    """As the agent does: an input without its target and a pair that cannot be read are named and left out, the
    pool keeps its size from the pairs read after them (it stopped with "Pass missing='skip'", an internal
    parameter); with a pool smaller than the data, the pair read next takes the place of one left out."""
    from PIL import Image

    for sub in ("input", "target"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    rng = torch.Generator().manual_seed(1)
    for i in range(12):
        target = torch.rand(3, 24, 32, generator=rng)
        for sub, img in (("input", target * 0.5), ("target", target)):
            array = (img.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
            Image.fromarray(array).save(tmp_path / "data" / sub / f"{i:02d}.png")
    (tmp_path / "data" / "target" / "05.png").unlink()
    (tmp_path / "data" / "input" / "07.png").write_bytes(b"not a png")
    cfg = _tiny(tmp_path / "run", data="pairs", root=str(tmp_path / "data"), pool_size=15, steps=2)
    with pytest.warns(UserWarning) as caught:
        (x, t, _), views, photos = build_data(cfg)
    said = " | ".join(str(w.message) for w in caught)
    assert "left out 1 item of --data pairs without a target" in said and "05" in said
    assert "left out 1 unreadable item: 07" in said
    assert x.shape == (15, 3, 16, 16) and t.shape == (15, 3, 16, 16) and len(photos) == 1
    assert (x.float() - t.float() / 2).abs().max() <= 1
    with pytest.warns(UserWarning, match="unreadable item: 07"):  # 07 is the fourth pair of seed 0's order
        (x, _, _), _, _ = build_data(dataclasses.replace(cfg, pool_size=4))
    assert len(x) == 4  # the fifth pair stands in for it (the pool had 3 crops)
    for i in range(1, 12):  # only 00, the held-out pair, keeps its input
        (tmp_path / "data" / "input" / f"{i:02d}.png").unlink(missing_ok=True)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="need pairs both for training and for the "
                                                                    "held-out evaluation, found 0 and 1"):
        build_data(cfg)


def test_a_wall_clock_budget_stops_training(tmp_path):
    start = time.monotonic()
    result = train_cgan(_tiny(tmp_path, steps=10 ** 9, minutes=0.02))
    assert time.monotonic() - start < 60 and 0 < result["steps"] < 10 ** 9
    assert load_cgan(tmp_path / "cgan.safetensors") is not None and (tmp_path / "eval.json").is_file()
    with pytest.raises(FileExistsError, match="holds an earlier run already .cgan.safetensors, eval.json"):
        train_cgan(_tiny(tmp_path, steps=1))  # would replace the model just trained
