import json

import pytest
import torch
from safetensors.torch import load_file

from deepexpose.agents.checkpoint import checkpoint_exists, load_checkpoint, read_meta, save_checkpoint, update_meta


def test_round_trip_modules_optimizers_tensors(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net(torch.rand(4, 3)).sum().backward()
    opt.step()
    g = torch.Generator().manual_seed(5)
    path = save_checkpoint(tmp_path / "c.safetensors", modules={"net": net}, optimizers={"net": opt},
                           tensors={"gen": g.get_state()}, meta={"step": 7})
    assert json.loads((tmp_path / "c.json").read_text())["meta"] == {"step": 7}
    assert set(load_file(path)) >= {"module.net.weight", "optim.net.0.exp_avg", "tensor.gen"}
    net2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.Adam(net2.parameters(), lr=0.5)
    meta, extra = load_checkpoint(path, modules={"net": net2}, optimizers={"net": opt2})
    assert meta == {"step": 7} and read_meta(path) == {"step": 7}
    assert torch.equal(net2.weight, net.weight) and opt2.param_groups[0]["lr"] == 0.01
    torch.testing.assert_close(opt2.state[net2.weight]["exp_avg"], opt.state[net.weight]["exp_avg"])
    g2 = torch.Generator()
    g2.set_state(extra["gen"])
    assert torch.equal(torch.rand(3, generator=g2), torch.rand(3, generator=g))


def test_incomplete_or_foreign(tmp_path):
    with pytest.raises(FileNotFoundError, match="incomplete"):
        read_meta(tmp_path / "none.safetensors")
    (tmp_path / "x.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="format"):
        read_meta(tmp_path / "x.safetensors")
    net = torch.nn.Linear(2, 2)
    path = save_checkpoint(tmp_path / "c.safetensors", modules={"net": net})
    with pytest.raises(ValueError, match="no weights"):
        load_checkpoint(path, modules={"other": net})
    # damaged files are named, as ValueError / FileNotFoundError the command line reports in one line
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="c.safetensors is damaged: not a readable safetensors file"):
        load_checkpoint(path, modules={"net": net})
    path.unlink()
    with pytest.raises(FileNotFoundError, match="c.safetensors is missing"):
        load_checkpoint(path, modules={"net": net})
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(ValueError, match="c.json is damaged: not JSON"):
        read_meta(path)
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="is not a"):
        read_meta(path)
    good = save_checkpoint(tmp_path / "g.safetensors", modules={"net": net})
    with pytest.raises(ValueError, match="g.json is a checkpoint's description: pass .*g.safetensors"):
        load_checkpoint(good.with_suffix(".json"), modules={"net": net})  # it called g.safetensors damaged
    with pytest.raises(IsADirectoryError, match="is a folder: pass a model's .safetensors file"):
        read_meta(tmp_path)  # it asked for a "<folder>.json beside it"


def test_shared_submodules_are_stored_once(tmp_path):
    class Shared(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(2, 2)
            self.b = self.a  # the same layer under two names, as SB3's shared features extractor

    src, dst = Shared(), Shared()
    path = save_checkpoint(tmp_path / "s.safetensors", modules={"m": src})
    assert set(load_file(path)) == {"module.m.a.weight", "module.m.a.bias"}
    load_checkpoint(path, modules={"m": dst})
    assert torch.equal(dst.a.weight, src.a.weight) and dst.b is dst.a


def test_checkpoint_exists_when_either_file_does(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    assert not checkpoint_exists(path)
    save_checkpoint(path, modules={"m": torch.nn.Linear(1, 1)}, meta={"step": 1})
    assert checkpoint_exists(path)
    path.with_suffix(".json").unlink()  # half a checkpoint: a run killed between its two files
    assert checkpoint_exists(path)
    path.unlink()
    path.with_suffix(".json").write_text("{}")
    assert checkpoint_exists(path)


def test_update_meta_replaces_entries_and_leaves_the_tensors(tmp_path):
    net = torch.nn.Linear(2, 2)
    path = save_checkpoint(tmp_path / "c.safetensors", modules={"net": net}, meta={"step": 3, "best": {"score": 1}})
    tensors = path.read_bytes()
    update_meta(path, best={"score": 2})
    assert read_meta(path) == {"step": 3, "best": {"score": 2}} and path.read_bytes() == tensors
    other = torch.nn.Linear(2, 2)
    load_checkpoint(path, modules={"net": other})
    assert torch.equal(other.weight, net.weight)
    (tmp_path / "x.json").write_text(json.dumps({"format": "other", "meta": {}}))
    with pytest.raises(ValueError, match="not a deepexpose-checkpoint-1 file"):
        update_meta(tmp_path / "x.safetensors", step=1)
