"""The histogram-network baseline of seed 002: training, checkpoints, correction, bad arguments."""

import dataclasses
import json
import time

import pytest
import torch

from deepexpose.agents.checkpoint import save_checkpoint
from deepexpose.agents.histogram import (
    CHECKPOINT_NAME,
    HistogramConfig,
    HistogramCorrector,
    HistogramNet,
    check_config,
    kl_loss,
    load_histogram,
    make_pairs,
    train_histogram,
)
from deepexpose.config import field_docs
from deepexpose.transfer import PdfTransfer, rgb_histogram
from conftest import random_image

TINY = dict(bins=8, width=4, size=16, pool_size=8, refresh=2, batch=4, steps=3, iterations=3, transfer_bins=32,
            per_bin=2, eval_size=3, eval_view=24, threads=0, progress=False)


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: one thread is faster than two busy ones (OpenMP waits) on a shared machine."""
    from deepexpose.agents.train import torch_threads

    with torch_threads(1):
        yield


def test_training_writes_a_loadable_checkpoint(tmp_path):
    cfg = HistogramConfig(out=str(tmp_path / "run"), **TINY)
    result = train_histogram(cfg)
    assert result["steps"] == 3 and {"psnr", "delta_e2000", "input_psnr", "input_delta_e2000"} <= set(result)
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["steps"] == 3
    meta = json.loads((tmp_path / "run" / "histogram.json").read_text())["meta"]
    saved = dataclasses.asdict(dataclasses.replace(cfg, data="demo"))  # --data auto, no library in the tests
    assert meta["config"] == saved and meta["model"] == {"bins": 8, "width": 4}
    a, b = load_histogram(tmp_path / "run" / CHECKPOINT_NAME), load_histogram(tmp_path / "run")
    hist = rgb_histogram(random_image(2, 16, 16, seed=1), 8)
    assert torch.equal(a.net(hist), b.net(hist))
    assert a.settings() == b.settings() == {"view": 16, "smooth": 1.0, "iterations": 3, "transfer_bins": 32,
                                            "per_bin": 2, "source": "histogram", "seed": 0}
    photo = random_image(1, 20, 28, seed=2)
    assert torch.equal(a.enhance(photo)[0], b.enhance(photo)[0])


def test_pairs_made_in_chunks_are_the_pairs_made_at_once():
    """The training pool is made POOL_CHUNK pairs at a time, looking at the clock between chunks: the same draws
    (so the same pool, and the same generator state after it) as one call."""
    from deepexpose.agents.histogram import POOL_CHUNK

    photos = [random_image(1, 30, 40, seed=s)[0] for s in range(3)]
    kw = dict(size=16, bins=8, identity_fraction=0.2, smooth=1.0)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    whole = make_pairs(photos, 2 * POOL_CHUNK + 22, g1, **kw)
    parts = [make_pairs(photos, n, g2, **kw) for n in (POOL_CHUNK, POOL_CHUNK, 22)]
    for a, b in zip(whole, zip(*parts, strict=True), strict=True):
        assert torch.equal(a, torch.cat(b))
    assert torch.equal(g1.get_state(), g2.get_state())


def test_kl_loss_decreases_on_a_tiny_overfit_problem():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    photos = [random_image(1, 24, 24, seed=s)[0] ** (1 + s) for s in range(2)]
    bad, good = make_pairs(photos, 4, g, size=16, bins=8, identity_fraction=0.0)
    assert bad.shape == good.shape == (4, 8, 8, 8)
    torch.testing.assert_close(good.sum((1, 2, 3)), torch.ones(4))
    net = HistogramNet(8, 4)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = kl_loss(net(bad), good)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_enhance_keeps_shape_dtype_and_range_at_any_size():
    corrector = HistogramCorrector(HistogramNet(8, 4), view=16, iterations=4, transfer_bins=32, per_bin=2)
    for photo in (random_image(1, 37, 53, seed=3), random_image(1, 9, 11, seed=4, dtype=torch.float64)):
        out, info = corrector.enhance(photo)
        assert out.shape == photo.shape and out.dtype == photo.dtype
        assert float(out.min()) >= 0 and float(out.max()) <= 1
        json.dumps(info)
        assert info["method"] == "histogram-pitie" and info["bins"] == 8 and info["iterations"] == 4
    transfer, info = corrector.plan(random_image(1, 30, 30, seed=5))
    assert isinstance(transfer, PdfTransfer) and transfer.iterations == 4
    assert info["predicted_entropy_bits"] > 0


@pytest.mark.parametrize("source, smooth, atol", [("histogram", 1.0, 1e-5), ("pixels", 0.0, 0.1)])
def test_a_prediction_equal_to_the_input_histogram_is_the_identity(source, smooth, atol):
    net = HistogramNet(8, 4)
    net.predict = lambda hist: hist  # a perfect "leave it alone" prediction
    photo = random_image(1, 32, 32, seed=6)
    out, _ = HistogramCorrector(net, view=32, smooth=smooth, iterations=5, source=source).enhance(photo)
    torch.testing.assert_close(out, photo, atol=atol, rtol=0)  # pixels: within the binning error


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="multiple of 8"):
        check_config(HistogramConfig(bins=12))
    with pytest.raises(ValueError, match="multiple of 8"):
        HistogramNet(bins=4)
    for bad in (dict(source="lut"), dict(identity_fraction=1.5), dict(batch=0), dict(lr=0.0), dict(steps=-1)):
        with pytest.raises(ValueError):
            check_config(HistogramConfig(**bad))
    with pytest.raises(ValueError, match="--refresh must be at most --pool-size 64 .*, got 65"):  # ran for ever
        check_config(HistogramConfig(pool_size=64, refresh=65))
    check_config(HistogramConfig(pool_size=64, refresh=64))
    with pytest.raises(ValueError, match="--data"):
        train_histogram(HistogramConfig(data="pairs", out=str(tmp_path / "x"), **TINY))
    net = HistogramNet(8, 4)
    with pytest.raises(ValueError, match="B x 8 x 8 x 8"):
        net(torch.rand(2, 16, 16, 16))
    with pytest.raises(ValueError, match="source"):
        HistogramCorrector(net, source="lut")
    with pytest.raises(ValueError, match="1 x 3 x H x W"):
        HistogramCorrector(net).enhance(random_image(2, 8, 8))
    save_checkpoint(tmp_path / "other.safetensors", tensors={"x": torch.zeros(1)}, meta={"kind": "agent"})
    with pytest.raises(ValueError, match="not a histogram"):
        load_histogram(tmp_path / "other.safetensors")
    with pytest.raises(FileNotFoundError):
        load_histogram(tmp_path / "missing.safetensors")


def test_config_is_documented_and_the_bundled_model_is_small():
    docs = field_docs(HistogramConfig)
    assert all(docs.get(f.name) for f in dataclasses.fields(HistogramConfig))
    cfg = HistogramConfig()
    params = sum(p.numel() for p in HistogramNet(cfg.bins, cfg.width).parameters())
    assert params * 4 < 5 * 2 ** 20


def test_a_wall_clock_budget_stops_training(tmp_path):
    start = time.monotonic()
    result = train_histogram(HistogramConfig(out=str(tmp_path / "run"), **{**TINY, "steps": 10 ** 9, "minutes": 0.05}))
    assert time.monotonic() - start < 60 and result["steps"] < 10 ** 9
    assert (tmp_path / "run" / "histogram.safetensors").is_file() and (tmp_path / "run" / "eval.json").is_file()


def test_evaluate_histogram_scores_against_the_right_images():
    from deepexpose.agents.histogram import evaluate_histogram
    from deepexpose.envs import PairPool
    from deepexpose.metrics import capped_psnr

    g = torch.Generator().manual_seed(0)
    t = (torch.rand(6, 3, 8, 8, generator=g) * 255).round().to(torch.uint8)
    x = t.clone()
    x[:4] = (t[:4].float() * 0.6).round().to(torch.uint8)  # four detuned views, two left untouched
    pool = PairPool(x, t, [{"class": "basic"}] * 4 + [{"class": "correct"}] * 2)
    targets = {pool.get([i])[0].numpy().tobytes(): pool.get([i])[1] for i in range(6)}

    class Stub:
        def __init__(self, oracle):
            self.oracle = oracle

        def enhance(self, view):
            return (targets[view.numpy().tobytes()] if self.oracle else view), {}

    same = evaluate_histogram(Stub(False), pool)
    expected_input = sum(capped_psnr(*pool.get([i])) for i in range(4)) / 4
    assert same["psnr"] == same["input_psnr"] == pytest.approx(expected_input) and expected_input < 40
    assert same["delta_e2000"] == same["input_delta_e2000"] > 1
    assert same["good_psnr"] == 100 and (same["detuned_views"], same["good_views"]) == (4, 2)
    perfect = evaluate_histogram(Stub(True), pool)
    assert perfect["psnr"] == 100 and perfect["delta_e2000"] == 0 and perfect["input_psnr"] == same["input_psnr"]
