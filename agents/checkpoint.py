"""Checkpoints as safetensors plus JSON: tensors in one file, everything else readable beside it. No pickles.

``save_checkpoint(path, tensors={...}, modules={...}, optimizers={...}, meta={...})`` writes ``path`` (the
``.safetensors`` file) and ``path`` with suffix ``.json``, both atomically, the JSON last so that a checkpoint
whose JSON exists is complete. Optimizer states are flattened into tensors (``optim.<name>.<param>.<key>``)
and their hyper-parameters go to the JSON; a tensor a module holds under several names (a shared
sub-module) is stored once and the other names are recorded as aliases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from deepexpose.io import atomic_write_bytes

FORMAT = "deepexpose-checkpoint-1"


def _json_path(path: Path) -> Path:
    return path.with_suffix(".json")


def save_checkpoint(path: str | Path, *, modules: dict[str, nn.Module] | None = None,
                    optimizers: dict[str, torch.optim.Optimizer] | None = None,
                    tensors: dict[str, torch.Tensor] | None = None, meta: dict[str, Any] | None = None) -> Path:
    """Write ``path`` (safetensors) and its JSON twin; returns ``path``."""
    path = Path(path)
    flat: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}  # a tensor shared under several names is stored once
    for name, module in (modules or {}).items():
        seen: dict[tuple[int, int, tuple[int, ...]], str] = {}
        for key, value in module.state_dict().items():
            full = f"module.{name}.{key}"
            ident = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape))
            if ident in seen:
                aliases[full] = seen[ident]
                continue
            seen[ident] = full
            flat[full] = value.detach().cpu().contiguous()
    groups: dict[str, Any] = {}
    for name, opt in (optimizers or {}).items():
        state = opt.state_dict()
        groups[name] = state["param_groups"]
        for pid, pstate in state["state"].items():
            for key, value in pstate.items():
                flat[f"optim.{name}.{pid}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    for name, value in (tensors or {}).items():
        flat[f"tensor.{name}"] = value.detach().cpu().contiguous()
    atomic_write_bytes(path, st_save(flat), overwrite=True)
    doc = {"format": FORMAT, "optimizer_param_groups": groups, "aliases": aliases, "meta": meta or {}}
    atomic_write_bytes(_json_path(path), json.dumps(doc, indent=2).encode(), overwrite=True)
    return path


def checkpoint_exists(path: str | Path) -> bool:
    """Whether any part of the checkpoint ``path`` (its ``.safetensors`` or its JSON) exists: ``--resume`` starts
    afresh only where neither does, so that half a checkpoint is reported (:func:`read_meta`), never replaced."""
    path = Path(path)
    return path.exists() or _json_path(path).exists()


def read_meta(path: str | Path) -> dict[str, Any]:
    """The JSON ``meta`` of a checkpoint (clear error if it is missing or not ours; given its JSON or a folder, which
    holds no checkpoint of that name, the error says to pass the ``.safetensors`` file)."""
    if Path(path).suffix == ".json":  # it read the JSON, then called the safetensors file damaged
        raise ValueError(f"{path} is a checkpoint's description: pass {Path(path).with_suffix('.safetensors')}")
    if Path(path).is_dir():  # it asked for a "<folder>.json beside it"
        raise IsADirectoryError(f"{path} is a folder: pass a model's .safetensors file")
    jp = _json_path(Path(path))
    if not jp.is_file():
        raise FileNotFoundError(f"checkpoint {path} is incomplete or missing: no {jp.name} beside it")
    try:
        doc = json.loads(jp.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{jp} is damaged: not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{jp} is not a {FORMAT} file (format "
                         f"{doc.get('format') if isinstance(doc, dict) else None!r})")
    return doc["meta"]


def update_meta(path: str | Path, **changes: Any) -> None:
    """Replace entries of the JSON ``meta`` of the checkpoint ``path`` (atomically; its tensors are not touched)."""
    jp = _json_path(Path(path))
    read_meta(path)  # ours and complete
    doc = json.loads(jp.read_text())
    doc["meta"] = {**doc["meta"], **changes}
    atomic_write_bytes(jp, json.dumps(doc, indent=2).encode(), overwrite=True)


def load_checkpoint(path: str | Path, *, modules: dict[str, nn.Module] | None = None,
                    optimizers: dict[str, torch.optim.Optimizer] | None = None) -> tuple[dict, dict[str, torch.Tensor]]:
    """Load module weights and optimizer states in place; returns ``(meta, extra tensors)``."""
    path = Path(path)
    meta = read_meta(path)
    doc = json.loads(_json_path(path).read_text())
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} is missing (only its {_json_path(path).name} is there)")
    try:
        flat = st_load(path.read_bytes())
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error type for a damaged file
        raise ValueError(f"checkpoint {path} is damaged: not a readable safetensors file ({e})") from None
    flat.update({alias: flat[target] for alias, target in doc.get("aliases", {}).items()})
    for name, module in (modules or {}).items():
        prefix = f"module.{name}."
        state = {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}
        if not state:
            raise ValueError(f"checkpoint {path} has no weights for {name!r}")
        module.load_state_dict(state)
    for name, opt in (optimizers or {}).items():
        prefix = f"optim.{name}."
        state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in flat.items():
            if k.startswith(prefix):
                pid, key = k[len(prefix):].split(".", 1)
                state.setdefault(int(pid), {})[key] = v
        opt.load_state_dict({"state": state, "param_groups": doc["optimizer_param_groups"][name]})
    extra = {k[len("tensor."):]: v for k, v in flat.items() if k.startswith("tensor.")}
    return meta, extra
