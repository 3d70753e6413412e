"""Device choice: CUDA when present, CPU otherwise, overridable with ``--device``."""

from __future__ import annotations

import torch

from synthmed.errors import UserError


def pick_device(name: str = "auto") -> torch.device:
    """Return the torch device for ``name`` ("auto", "cpu", "cuda", "cuda:1", "mps")."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: not a device name (try auto, cpu or cuda)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    return device


PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware (so autocast to it pays off).

    CUDA: compute capability 8.0+ (Ampere). CPU: AVX512-BF16 or AMX; elsewhere oneDNN would
    emulate bf16 and run slower than float32.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, p, lambda: False)() for p in probes)
    return False


def pick_precision(name: str, device: torch.device) -> torch.dtype:
    """Compute dtype of the networks' convolutions: float32 or bfloat16 (mixed precision).

    "auto" picks bfloat16 where the hardware has it, float32 otherwise. Weights, optimiser
    state and losses stay float32 either way (autocast), so a run can resume on either.
    """
    if name not in PRECISIONS:
        raise UserError(f"--precision {name}: choose one of {', '.join(PRECISIONS)}")
    if name == "fp32" or (name == "auto" and not native_bf16(device)):
        return torch.float32
    return torch.bfloat16


def autocast(device: torch.device, dtype: torch.dtype) -> torch.autocast:
    """Autocast context for ``dtype`` on ``device`` (disabled for float32)."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
