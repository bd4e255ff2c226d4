import pytest
import torch

from conftest import random_image
from deepexpose.filters import DEFAULT_GLOBAL_FILTERS, FILTERS, FilterPipeline, adjust_exposure, adjust_saturation


def test_default_pipeline_identity_and_size():
    p = FilterPipeline()
    assert p.names == DEFAULT_GLOBAL_FILTERS
    assert p.num_params == sum(FILTERS[n].num_params for n in DEFAULT_GLOBAL_FILTERS)
    x = random_image()
    assert torch.equal(p(x, torch.zeros(2, p.num_params)), x)  # bit for bit


def test_pipeline_applies_filters_in_order():
    p = FilterPipeline(["exposure", "saturation"])
    x = random_image(b=1)
    a = torch.tensor([[0.5, -0.5]])  # +1.5 EV, saturation 0.5
    torch.testing.assert_close(p(x, a), adjust_saturation(adjust_exposure(x, 1.5), 0.5))


def test_describe_and_back():
    p = FilterPipeline()
    a = torch.rand(3, p.num_params) * 2 - 1
    desc = p.describe(a)
    assert len(desc) == 3 and desc[0]["exposure"]["ev"] == pytest.approx(3.0 * float(a[0, 2]), abs=1e-5)
    for i in range(3):
        torch.testing.assert_close(p.action_from_description(desc[i]), a[i:i + 1], atol=1e-5, rtol=0)
    # missing entries mean "unchanged"
    torch.testing.assert_close(p.action_from_description({"exposure": {"ev": 1.5}})[0, 2], torch.tensor(0.5))


def test_pipeline_errors():
    p = FilterPipeline(["exposure"])
    with pytest.raises(ValueError, match="B x 1"):
        p(random_image(), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="unknown filters"):
        p.action_from_description({"gamma": {"gamma": 1.0}})
    with pytest.raises(ValueError, match="unknown parameters"):
        p.action_from_description({"exposure": {"stops": 1.0}})
    with pytest.raises(ValueError, match="per-mask"):
        FilterPipeline(["local_exposure"])
    with pytest.raises(KeyError):
        FilterPipeline(["nope"])
    with pytest.raises(ValueError, match="at least one filter"):  # an action of shape (0,), then an IndexError
        FilterPipeline([])
    with pytest.raises(ValueError, match="each filter once .* exposure given twice"):  # describe lost one's values
        FilterPipeline(["exposure", "gamma", "exposure"])


def test_a_registry_entry_that_is_not_a_filter_of_its_own_name_is_refused(monkeypatch):
    from deepexpose.filters import Filter, get_filter

    monkeypatch.setitem(FILTERS, "x", get_filter("gamma"))  # the pipeline describes it as "gamma"
    monkeypatch.setitem(FILTERS, "b", Filter(name="b", params=(), apply=None))
    for name in ("x", "b"):
        with pytest.raises(ValueError, match=f"FILTERS\\['{name}'\\] must be a Filter named '{name}' with an apply"):
            FilterPipeline([name])


def test_pipeline_gradients_reach_every_action():
    p = FilterPipeline()
    x = random_image(low=0.2, high=0.8)
    a = (torch.rand(2, p.num_params) * 0.4 - 0.2).requires_grad_()
    p(x, a).mean().backward()
    assert torch.isfinite(a.grad).all() and (a.grad.abs().sum(0) > 0).all()


@pytest.mark.parametrize("names", [DEFAULT_GLOBAL_FILTERS, ("levels", "exposure", "white_balance", "gamma"),
                                   ("exposure",), ("white_balance", "exposure")])
def test_fused_gains_match_filter_by_filter(names):
    """Without gradients, runs of gain filters are fused into one decode and encode: the same values."""
    from deepexpose.filters import srgb_to_linear

    p = FilterPipeline(names)
    x = random_image(b=4, h=9, w=11, seed=3)
    a = torch.rand(4, p.num_params, generator=torch.Generator().manual_seed(6)) * 2 - 1
    a[0] = 0.0  # identity
    a[1, :3] = 0.0  # some gains exactly 1, others not
    slow = p(x.clone().requires_grad_(), a).detach()
    with torch.no_grad():
        fast = p(x, a)
        cached = p(x, a, linear=srgb_to_linear(x))
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(cached, slow, atol=1e-6, rtol=1e-5)
    assert torch.equal(fast[0], x[0])  # identity stays bit for bit
