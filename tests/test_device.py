"""``deepexpose.device.resolve_device``: what ``--device`` stands for."""

import pytest
import torch

from deepexpose.device import resolve_device


def test_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where CUDA is missing")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_an_error(name):
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device(name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_with_cuda():
    assert resolve_device("cuda:0") == torch.device("cuda:0")


def test_unknown_device_is_refused():
    for name in ("gpu", "tpu"):
        with pytest.raises(ValueError, match=f"--device must be auto, cpu, cuda or cuda:N, got '{name}'"):
            resolve_device(name)
