"""Reading single-file checkpoints (.safetensors, .ckpt) into a flat state dict.

The format is decided by the file's first bytes, not its name: users rename files. Nothing here
ever unpickles arbitrary objects: `.ckpt` files go through ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import pickle
import pickletools
import re
import struct
from collections.abc import Mapping
from pathlib import Path

import torch

from engine.errors import (
    CorruptCheckpointError,
    NotACheckpointError,
    UnsafeCheckpointError,
)

# Keys a loader never needs: EMA copies, schedule buffers (we compute the schedule), CLIP's
# position ids (rebuilt by the text encoder).
IGNORED_PREFIXES = ("model_ema.",)
IGNORED_NAMES = {
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
    "model.logvar",
    "logvar",
}

# The networks' tensors (checked for sane values) and the integer entries that sit among them.
MODEL_PREFIXES = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.")
INTEGER_KEYS = ("position_ids", "num_batches_tracked")

_PICKLE_OPCODES = {op.code for op in pickletools.opcodes}

MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # real headers are < 1 MB
ZIP_MAGIC = b"PK\x03\x04"


def sniff_format(path: Path) -> str:
    """Return "safetensors", "torch-zip" or "pickle"; raise if the file is none of them."""
    with open(path, "rb") as f:
        head = f.read(9)
    if head.startswith(ZIP_MAGIC):
        return "torch-zip"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:  # pickle protocol 2..5
        return "pickle"
    if len(head) >= 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if 2 <= header_len <= MAX_SAFETENSORS_HEADER and head[8:9] == b"{":
            return "safetensors"
    raise NotACheckpointError(
        f"{path.name} is not a model checkpoint (neither safetensors nor a PyTorch .ckpt). "
        "Choose a Stable Diffusion 1.x .safetensors or .ckpt file, or a diffusers folder."
    )


def is_ignored(key: str) -> bool:
    return key.startswith(IGNORED_PREFIXES) or key in IGNORED_NAMES or key.endswith("position_ids")


def read_safetensors_header(path: Path) -> dict[str, dict]:
    """Parse and sanity-check the JSON header without touching tensor data."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        if 8 + header_len > size:
            raise _truncated(path)
        try:
            header = json.loads(f.read(header_len))
        except RecursionError:  # deeply nested JSON: crafted, never written by a real tool
            raise _corrupt(path, "its header is nested absurdly deep") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CorruptCheckpointError(
                f"{path.name} has a damaged safetensors header ({e}). Download the file again."
            ) from None
    if not isinstance(header, dict):
        raise _corrupt(path, "its header is not a table of tensors")
    header.pop("__metadata__", None)
    data_len = size - 8 - header_len
    for key, info in header.items():
        _check_entry(path, key, info, data_len)
    return header


def _check_entry(path: Path, key: str, info: object, data_len: int) -> None:
    """Shapes and offsets must be sane and inside the file: a hostile header can't make us
    allocate terabytes or read past the end."""
    if not isinstance(info, dict) or "shape" not in info or "data_offsets" not in info:
        raise _corrupt(path, f"the entry for {key!r} is malformed")
    shape, offsets = info["shape"], info["data_offsets"]
    ok = (
        isinstance(shape, list)
        and all(isinstance(d, int) and 0 <= d < 2**31 for d in shape)
        and isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    )
    if not ok:
        raise _corrupt(path, f"the entry for {key!r} has an impossible shape or offset")
    if offsets[1] > data_len:
        raise _truncated(path)


def read_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a safetensors file, read from the header alone."""
    return {k: tuple(v["shape"]) for k, v in read_safetensors_header(path).items()}


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    read_safetensors_header(path)
    try:
        # Memory-mapped: tensors page in from the file as they are used, not copied up front.
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise _corrupt(path, str(e)) from None


def load_pickle_checkpoint(path: Path) -> Mapping[str, object]:
    try:
        obj = _torch_load(path)
    except pickle.UnpicklingError as e:
        if is_damaged_pickle(e):
            raise _corrupt(path, refusal_reason(e)) from None
        raise UnsafeCheckpointError(
            f"{path.name} is a pickle that asks to run code or build objects that are not plain "
            "tensors, so it was not loaded (nothing in it was executed). Use a .safetensors "
            f"version of this model. Details: {refusal_reason(e)}"
        ) from None
    except FileNotFoundError:
        raise NotACheckpointError(f"{path} does not exist. Check the path and try again.") from None
    except Exception as e:  # noqa: BLE001 - damaged pickles raise KeyError, IndexError, ...
        raise _corrupt(path, f"{type(e).__name__}: {_first_line(e)}") from None
    if not isinstance(obj, Mapping):
        raise NotACheckpointError(
            f"{path.name} holds a {type(obj).__name__}, not a table of weights. "
            "Choose a Stable Diffusion 1.x checkpoint."
        )
    return obj


def _torch_load(path: Path) -> object:
    """``torch.load`` with the weights-only unpickler, memory-mapped when the format allows."""
    if path.name.endswith(".safetensors"):
        # torch.load picks safetensors by this suffix, but the bytes said pickle: a renamed
        # .ckpt. A file object keeps torch to the bytes (without mmap, which needs a name).
        with open(path, "rb") as f:
            return torch.load(f, map_location="cpu", weights_only=True)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as e:
        if "mmap" not in str(e):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)  # legacy format


def unwrap_state_dict(obj: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """`.ckpt` files wrap the weights in "state_dict" (Lightning) and carry other entries."""
    inner = obj.get("state_dict")
    if isinstance(inner, Mapping):
        obj = inner
    return {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}


def load_single_file(path: Path) -> dict[str, torch.Tensor]:
    """Read a .safetensors or .ckpt file into a flat state dict, without ignored keys."""
    fmt = sniff_format(path)
    if fmt == "safetensors":
        sd = load_safetensors(path)
    else:
        sd = unwrap_state_dict(load_pickle_checkpoint(path))
    sd = {k: v for k, v in sd.items() if not is_ignored(k)}
    check_weights(sd, path.name)
    return sd


def check_weights(sd: Mapping[str, torch.Tensor], source: str) -> None:
    """Refuse weights no working SD model holds, before they turn into a crash in the middle of
    sampling (integer or complex weights) or a silently black picture (NaN or Inf).

    Only the three networks' tensors are checked: extra entries are ignored by the loader, so a
    broken one there harms nothing. float8 and float64 weights are fine: they are cast.
    """
    weights = {k: v for k, v in sd.items() if k.startswith(MODEL_PREFIXES)}
    for key, tensor in weights.items():
        if not tensor.is_floating_point() and not key.endswith(INTEGER_KEYS):
            raise CorruptCheckpointError(
                f"{source} stores the weight {key!r} as {str(tensor.dtype).removeprefix('torch.')}"
                ", which no Stable Diffusion model uses (weights are floating point). The file "
                "is damaged or was written by a broken converter: download or convert it again."
            )
    broken = [k for k, t in weights.items() if t.is_floating_point() and _has_non_finite(t)]
    if broken:
        raise CorruptCheckpointError(
            f"{source} is a broken model: {len(broken)} of its weight tensors hold NaN or "
            f"infinite values (first: {broken[0]!r}), so every picture would come out black. "
            "This happens with failed merges or training runs: use another checkpoint, or "
            "download this one again."
        )


def _has_non_finite(tensor: torch.Tensor) -> bool:
    """NaN and Inf propagate into a sum: one cheap reduction per tensor instead of an
    element-wise test (2 GB of weights in ~0.2 s). Only a non-finite sum, which may also be a
    harmless float16 overflow, is confirmed element by element."""
    if tensor.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        if bool(torch.isfinite(tensor.sum())):
            return False
    else:
        tensor = tensor.float()  # float8: no reductions in its own dtype
    return not bool(torch.isfinite(tensor).all())


def is_damaged_pickle(error: pickle.UnpicklingError) -> bool:
    """torch's weights-only unpickler refuses damaged bytes and dangerous content (a GLOBAL, a
    class) with the same exception type: tell them apart, so that a broken download is not
    called an attack. Damage shows as an "operand" that is no pickle opcode at all."""
    found = re.search(r"Unsupported operand (\d+)", str(error))
    if found is None or "GLOBAL" in str(error):
        return False
    return chr(int(found.group(1))) not in _PICKLE_OPCODES


def refusal_reason(error: BaseException) -> str:
    """The words of torch's refusal naming the problem, without its advice to load with
    ``weights_only=False`` or to allow-list the global: a person must not be told that."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "GLOBAL" in line or "Unsupported" in line:
            line = line.removeprefix("WeightsUnpickler error:").split(" Please use")[0]
            return line.strip()[:300]
    safe = [line for line in lines if "weights_only" not in line and "Weights only" not in line]
    return safe[0][:300] if safe else "the pickle was refused"


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


def _corrupt(path: Path, why: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f"{path.name} is damaged and cannot be read ({why}). Download it again; if it came from "
        "a converter, convert it again."
    )


def _truncated(path: Path) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f"{path.name} is incomplete: the file ends before its last tensor. The download was "
        "probably interrupted: download it again."
    )
