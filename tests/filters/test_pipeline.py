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


def test_pipeline_gradients_reach_every_action():
    p = FilterPipeline()
    x = random_image(low=0.2, high=0.8)
    a = (torch.rand(2, p.num_params) * 0.4 - 0.2).requires_grad_()
    p(x, a).mean().backward()
    assert torch.isfinite(a.grad).all() and (a.grad.abs().sum(0) > 0).all()
