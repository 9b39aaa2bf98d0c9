"""Choosing the device and the precision. Explicit, never probed at import time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from engine.errors import InvalidRequestError

PRECISIONS = ("auto", "autocast", "full", "float16", "bfloat16", "float32")


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA if present, then Apple MPS, then the CPU; ``requested`` overrides ("cpu", "cuda:1")."""
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise InvalidRequestError(
                f"Unknown device {requested!r}: use cpu, cuda, cuda:N or mps."
            ) from None
        _check_available(device)
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def _check_available(device: torch.device) -> None:
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidRequestError("No CUDA GPU is available here: use --device cpu.")
    if device.type == "mps" and not mps_available():
        raise InvalidRequestError("Apple MPS is not available here: use --device cpu.")


def cpu_has_native_bf16() -> bool:
    """What oneDNN says: the CPU has bfloat16 instructions (AVX512-BF16 / AMX). Shown by the
    doctor beside the measurement; not used to choose, since such CPUs can still be slower in
    bfloat16 than in float32 (engine.cpu_precision)."""
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


@dataclass(frozen=True)
class PrecisionChoice:
    dtype: torch.dtype
    reason: str  # why, for the doctor's report


def choose_precision(
    device: torch.device, precision: str = "auto", cache_dir: Path | None = None
) -> PrecisionChoice:
    """The working precision of the UNet and text encoder (the VAE may be upcast on NaN).

    "auto" and "autocast" mean the reduced precision the device is good at: float16 on CUDA
    and MPS; on a CPU, bfloat16 only when timing it here showed it clearly faster than float32
    (engine.cpu_precision), else float32. "full" means float32.
    """
    if precision not in PRECISIONS:
        raise InvalidRequestError(
            f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}."
        )
    explicit = {
        "full": torch.float32,
        "float32": torch.float32,
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
    }
    if precision in explicit:
        return PrecisionChoice(explicit[precision], f"--precision {precision}")
    if device.type == "cuda":
        return PrecisionChoice(
            torch.float16, "CUDA GPUs run float16 natively; the VAE retries in float32 on overflow"
        )
    if device.type == "mps":
        return PrecisionChoice(torch.float16, "Apple GPUs run float16 natively")
    from engine.cpu_precision import cpu_precision

    measured = cpu_precision(cache_dir)
    return PrecisionChoice(getattr(torch, measured.dtype), measured.reason)


def pick_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    return choose_precision(device, precision).dtype


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
