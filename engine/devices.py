"""Choosing the device and the precision. Explicit, never probed at import time."""

from __future__ import annotations

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
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def _check_available(device: torch.device) -> None:
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidRequestError("No CUDA GPU is available here: use --device cpu.")
    if device.type == "mps" and not _mps_available():
        raise InvalidRequestError("Apple MPS is not available here: use --device cpu.")


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 matmuls natively (AVX512-BF16 / AMX); emulated
    bf16 is slower than float32, so it is only the default where it is native."""
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


def pick_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """The working precision of the UNet and text encoder (the VAE may be upcast on NaN).

    "auto" and "autocast" mean the reduced precision the device is good at: float16 on CUDA
    and MPS, bfloat16 on a CPU with native support, else float32. "full" means float32.
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
        return explicit[precision]
    if device.type in ("cuda", "mps"):
        return torch.float16
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
