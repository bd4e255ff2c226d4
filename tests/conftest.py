"""Shared fixtures: tiny images made by the tests themselves, and the devices to run on."""

import pytest
import torch


def _devices():
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    return devices


DEVICES = _devices()


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def no_photo_library(monkeypatch, tmp_path_factory):
    """Tests never see the user's photo library: ``--data auto`` means the demo set unless a test makes one."""
    monkeypatch.setenv("DEEPEXPOSE_PHOTOS", str(tmp_path_factory.getbasetemp() / "no-photo-library"))


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)


def random_image(b=2, h=8, w=10, *, seed=0, dtype=torch.float32, device="cpu", low=0.0, high=1.0):
    g = torch.Generator().manual_seed(seed)
    x = low + (high - low) * torch.rand(b, 3, h, w, generator=g, dtype=torch.float64)
    return x.to(dtype=dtype, device=device)
