"""Weights and checkpoints as safetensors + JSON: nothing we load can run code.

* A *component* folder (one trained generator) holds ``config.json`` and ``model.safetensors``.
* A *checkpoint* is one ``checkpoint.safetensors`` holding every tensor of a run (networks,
  optimiser moments, RNG states) with the rest of the state (step, optimiser hyper-parameters)
  as JSON in the safetensors metadata, so the file is complete or absent, never half-new.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from synthmed.errors import UserError
from synthmed.files import atomic_write, read_json, write_json

C = TypeVar("C")
# Buffers that models saved by earlier versions lack; loading keeps the module's default
# (Stage II's style prior: N(0, 1)).
OPTIONAL = frozenset({"style_mean", "style_scale"})


def save_component(folder: str | Path, config: Any, module: nn.Module, kind: str) -> None:
    """Write ``config.json`` (dataclass fields + kind) and ``model.safetensors``."""
    folder = Path(folder)
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    atomic_write(folder / "model.safetensors", lambda p: save_file(tensors, str(p)))
    write_json(folder / "config.json", {"kind": kind, **dataclasses.asdict(config)})


def read_config(folder: str | Path, cls: type[C], kind: str) -> C:
    """Read a component's ``config.json`` into the dataclass ``cls``, checking its kind."""
    path = Path(folder) / "config.json"
    raw = read_json(path)
    if not isinstance(raw, dict) or raw.pop("kind", None) != kind:
        raise UserError(f"{path}: not a {kind} model config")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise UserError(f"{path}: unknown config fields {unknown}")
    return cls(**raw)


def read_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read every tensor and the metadata of a safetensors file, with one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        return load_file(str(path)), meta
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable safetensors file ({e})") from None


def load_weights(
    module: nn.Module,
    path: str | Path,
    prefix: str = "",
    tensors: dict[str, torch.Tensor] | None = None,
) -> None:
    """Load safetensors weights into ``module``, refusing missing keys or other shapes.

    ``tensors`` (already read from ``path``) saves reading the file again.
    """
    if tensors is None:
        tensors, _ = read_tensors(path)
    own = module.state_dict()
    missing = sorted(
        k for k in own if prefix + k not in tensors and k.rsplit(".", 1)[-1] not in OPTIONAL
    )
    if missing:
        raise UserError(f"{path}: weights missing for {missing[:3]} (another architecture?)")
    own = {k: v for k, v in own.items() if prefix + k in tensors}
    for k, v in own.items():
        if tensors[prefix + k].shape != v.shape:
            raise UserError(
                f"{path}: weight {prefix}{k} has shape {tuple(tensors[prefix + k].shape)}, the "
                f"model expects {tuple(v.shape)} (weights of another configuration)"
            )
    module.load_state_dict({k: tensors[prefix + k] for k in own}, strict=False)


def save_checkpoint(
    path: str | Path,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    rng: dict[str, torch.Tensor],
    state: dict[str, Any],
) -> None:
    """Save a whole training state atomically into one safetensors file."""
    tensors: dict[str, torch.Tensor] = {}
    for name, m in modules.items():
        for k, v in m.state_dict().items():
            tensors[f"module.{name}.{k}"] = v.detach().cpu().contiguous()
    opt_meta = {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        for pid, slots in sd["state"].items():
            for k, v in slots.items():
                tensors[f"optim.{name}.{pid}.{k}"] = torch.as_tensor(v).detach().cpu().clone()
        opt_meta[name] = sd["param_groups"]
    for name, t in rng.items():
        tensors[f"rng.{name}"] = t.cpu().clone()
    # One metadata key: safetensors writes its metadata map in hash order, so two keys came out
    # in either order and the same training state gave files of different bytes.
    meta = {"checkpoint": json.dumps({"state": state, "optimizers": opt_meta})}
    atomic_write(path, lambda p: save_file(tensors, str(p), metadata=meta))


def load_checkpoint(
    path: str | Path,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Restore modules and optimisers in place; return (rng tensors, state dict)."""
    tensors, meta = read_tensors(path)
    for name, m in modules.items():
        load_weights(m, path, prefix=f"module.{name}.", tensors=tensors)
    if "checkpoint" in meta:
        saved = json.loads(meta["checkpoint"])
    elif "state" in meta and "optimizers" in meta:  # written before the single key
        saved = {"state": json.loads(meta["state"]), "optimizers": json.loads(meta["optimizers"])}
    else:
        raise UserError(f"{path}: not a SynthMed checkpoint (metadata missing)")
    opt_meta = saved["optimizers"]
    for name, opt in optimizers.items():
        state: dict[int, dict[str, torch.Tensor]] = {}
        prefix = f"optim.{name}."
        for key, v in tensors.items():
            if key.startswith(prefix):
                pid, slot = key[len(prefix) :].split(".", 1)
                state.setdefault(int(pid), {})[slot] = v
        opt.load_state_dict({"state": state, "param_groups": opt_meta[name]})
    rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}
    return rng, saved["state"]
