"""``scripts/error_budget.py``: partial oracles, predictability of each error, and the agent's answers."""

import math

import numpy as np
import pytest
import torch

from conftest import load_script


def _textured(n, seed=0):
    """Photos of random smooth texture (a different grey level and cast each)."""
    g = torch.Generator().manual_seed(seed)
    photos = []
    for _ in range(n):
        low = torch.rand(1, 3, 4, 4, generator=g) * 0.5 + 0.25
        photos.append(torch.nn.functional.interpolate(low, size=(40, 48), mode="bilinear")[0])
    return photos


def test_detuned_views_skip_undoes_exactly_those_errors():
    eb = load_script("error_budget.py")
    photos = _textured(3)
    x, t, errors = eb.detuned_views(photos, 8, seed=1, size=16)
    undone, t2, errors2 = eb.detuned_views(photos, 8, seed=1, size=16, skip=("exposure", "white_balance",
                                                                            "contrast", "saturation"))
    assert x.shape == (8, 3, 16, 16) and errors == errors2 and torch.equal(t, t2)
    assert torch.equal(undone, t)  # every error skipped: the targets themselves
    assert torch.equal(x * 255, (x * 255).round())  # 8-bit values
    sizes = eb.error_sizes(errors)
    assert sizes.shape == (8, 5)
    for row, e in zip(sizes, errors, strict=True):
        assert row[2] == e.get("exposure", {}).get("ev", 0.0)
        assert row[4] == pytest.approx(math.log(e["saturation"]["factor"]) if "saturation" in e else 0.0)


def test_partial_oracles_improve_as_more_is_undone():
    eb = load_script("error_budget.py")
    r = eb.partial_oracles(_textured(4), 24, seed=2, size=16)
    assert list(r) == list(eb.UNDONE)
    psnrs = [v["psnr"] for v in r.values()]
    errors = [v["delta_e2000"] for v in r.values()]
    assert psnrs == sorted(psnrs) and psnrs[0] < psnrs[-1]
    assert errors == sorted(errors, reverse=True)


def test_scaled_ranges_and_scores_by_error_size():
    eb = load_script("error_budget.py")
    for got, want in zip(eb.scaled_ranges(1.0), eb.BASIC_RANGES, strict=True):
        assert got[:2] == want[:2] and got[2:] == pytest.approx(want[2:])
    half = dict(((f, p), (lo, hi)) for f, p, lo, hi in eb.scaled_ranges(0.5))
    assert half[("exposure", "ev")] == pytest.approx((-0.75, 0.75))
    assert half[("saturation", "factor")] == pytest.approx((0.5 ** 0.5, 1.6 ** 0.5))
    assert all(lo == pytest.approx(hi) for lo, hi in (r[2:] for r in eb.scaled_ranges(0.0)))  # no error at all
    r = eb.by_size(lambda v: v.clone(), _textured(3), 24, seed=3, size=16, scales=(0.25, 1.0), batch=10)
    assert list(r) == ["0.25", "1"]
    for v in r.values():  # a corrector that changes nothing scores as its input
        assert v["output"] == v["input"]
    assert r["0.25"]["input"]["psnr"] > r["1"]["input"]["psnr"] + 5  # smaller errors, better input


def test_an_error_the_statistics_reveal_is_predicted_and_one_they_hide_is_not():
    """On flat grey photos the white-balance error is the photo's only cast: R^2 near 1. A random number that
    changes nothing in the photo cannot be predicted: R^2 near 0 or below."""
    eb = load_script("error_budget.py")
    greys = [torch.full((3, 40, 48), v) for v in (0.3, 0.4, 0.5, 0.6)]
    xa, _, ea = eb.detuned_views(greys, 200, seed=3, size=16, ranges=[("white_balance", "temperature", -1, 1)],
                                 p_each=1.0)
    xb, _, e_b = eb.detuned_views(greys, 80, seed=4, size=16, ranges=[("white_balance", "temperature", -1, 1)],
                                  p_each=1.0)
    sa, sb = eb.error_sizes(ea), eb.error_sizes(e_b)
    rng = np.random.default_rng(0)
    sa[:, 2], sb[:, 2] = rng.normal(size=len(sa)), rng.normal(size=len(sb))  # "exposure": noise, not in the photo
    r2 = eb.predictability(xa, sa, xb, sb)
    assert r2["white_balance.temperature"] > 0.95
    assert r2["exposure.ev"] < 0.1
    assert math.isnan(r2["contrast.amount"])  # never drawn: no variance to explain


def test_the_log_chroma_network_learns_a_cast_the_photos_reveal():
    """Neutral textured photos with a temperature cast: the network reads it back (R^2 near 1); the tint, never
    drawn, has no variance to explain."""
    eb = load_script("error_budget.py")
    g = torch.Generator().manual_seed(1)
    photos = [torch.nn.functional.interpolate(torch.rand(1, 1, 4, 4, generator=g).expand(1, 3, 4, 4) * 0.5 + 0.2,
                                              size=(40, 48), mode="bilinear")[0] for _ in range(6)]
    ranges = [("white_balance", "temperature", -1, 1)]
    xa, _, ea = eb.detuned_views(photos, 256, seed=3, size=16, ranges=ranges, p_each=1.0)
    xb, _, e_b = eb.detuned_views(photos, 64, seed=4, size=16, ranges=ranges, p_each=1.0)
    net = eb.train_chroma_net(xa, eb.error_sizes(ea), epochs=12, batch=32)
    r2 = eb.chroma_predictability(net, xb, eb.error_sizes(e_b))
    assert r2["white_balance.temperature"] > 0.9
    assert math.isnan(r2["white_balance.tint"])
    _, tb, _ = eb.detuned_views(photos, 64, seed=4, size=16, ranges=ranges, p_each=1.0)
    before, after = eb.scores(xb, tb), eb.scores(eb.chroma_corrected(net, xb), tb)
    assert after["psnr"] > before["psnr"] + 5 and after["delta_e2000"] < before["delta_e2000"] / 2


def test_agent_answers_measure_slope_and_correlation():
    eb = load_script("error_budget.py")
    greys = [torch.full((3, 40, 48), v) for v in (0.3, 0.45, 0.6)]

    def undo_half(views):  # reads the cast back from the red-blue balance and corrects half of it
        stats = eb.colour_statistics(views)
        out = []
        for s in stats:
            balance = s[15]  # red minus blue, log-linear: about 2 ln 2 * temperature / 2 for these photos
            out.append({"white_balance": {"temperature": -0.5 * balance / math.log(2)}, "exposure": {"ev": 0.0},
                        "local_exposure": {"ev": [0.2, 0.4]}})
        return out

    r = eb.agent_answers(undo_half, greys, 40, seed=5, size=16)
    assert set(r) == set(eb.ERRORS)
    t = r["white_balance.temperature"]
    assert t["correlation"] < -0.99 and -0.8 < t["slope"] < -0.2
    assert r["exposure.ev"]["answer_sd"] == pytest.approx(0.0)  # always 0 + mean(0.2, 0.4): no spread
    assert eb.answered_size({"local_exposure": {"ev": [0.2, 0.4]}, "exposure": {"ev": 0.1}}, "exposure.ev") == \
        pytest.approx(0.4)
    assert eb.answered_size({}, "saturation.factor") == 0.0
    assert eb.answered_size({"saturation": {"factor": math.e}}, "saturation.factor") == pytest.approx(1.0)


@pytest.mark.filterwarnings("ignore::UserWarning")  # good_photo_split: too few demo photos
def test_runs_on_a_trained_agent(tiny_agent, run_script):
    report = run_script("error_budget.py", ["--model", str(tiny_agent), "--count", "10", "--chroma-epochs", "1",
                                            "--chroma-views", "16"])
    assert set(report["chroma_r2"]) == {"white_balance.temperature", "white_balance.tint"}
    assert list(report["chroma_oracle"]) == ["exposure undone exactly", "and white balance by the network"]
    assert report["chroma_oracle"]["exposure undone exactly"] == report["partial_oracles"]["exposure"]
    assert report["photos"] == {"train": 4, "held_out": 1} and report["views"] == 10
    assert list(report["partial_oracles"]) == ["none (the input)", "exposure", "exposure, white balance",
                                               "exposure, white balance, contrast"]
    assert list(report["by_size"]) == ["0.25", "0.5", "0.75", "1"]
    assert set(report["predictability_r2"]) == set(report["agent_answers"]) == {
        "white_balance.temperature", "white_balance.tint", "exposure.ev", "contrast.amount", "saturation.factor"}


@pytest.mark.parametrize("argv", [["--count", "0"], ["--count", "1"], ["--count", "9"], ["--sizes", "-1"],
                                  ["--sizes", "5"], ["--sizes", "a"], ["--chroma-epochs", "1", "--chroma-views", "0"]])
def test_bad_arguments_are_refused_before_any_work(argv, monkeypatch):
    budget = load_script("error_budget.py")
    monkeypatch.setattr(budget, "load_agent", lambda path: pytest.fail("work began"))
    monkeypatch.setattr("sys.argv", ["error_budget.py", *argv])
    with pytest.raises(SystemExit) as e:
        budget.main()
    assert e.value.code == 2
