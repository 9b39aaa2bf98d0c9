"""What a model file holds, from its header alone: kind, family, inpainting, and what is wrong.

``.safetensors``: the JSON header is read (bounded), never the tensor data. ``.ckpt``/``.pt``/
``.pth``/``.bin``: torch's zip archive is listed and its ``data.pkl`` walked opcode by opcode
(``pickle_scan``), never unpickled; legacy (pre-zip) torch pickles are walked the same way.
The format comes from the first bytes, not the suffix: people rename files. The kind rules are
the loader's own (``engine.loading.detect``), so "usable" here means the loader will take it.
Diffusers folders are judged by ``model_index.json`` and ``unet/config.json``.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import CheckpointError
from engine.family import SD1, Shapes
from engine.library.pickle_scan import PickleSummary, UnreadablePickle, read_pickle
from engine.library.pickle_scan import state_dict_shapes as pickle_shapes
from engine.library.records import Classification
from engine.loading.detect import detect_family, file_kind, foreign_family, unet_shapes

MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # real headers are < 1 MB
MAX_PICKLE_BYTES = 64 * 1024 * 1024  # a real SD checkpoint's data.pkl is < 1 MB
ZIP_MAGIC = b"PK\x03\x04"
LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of torch.save's pre-1.6 format

FAMILY_NAMES = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL"}
_FAMILY_BY_CONTEXT = {768: "sd1", 1024: "sd2", 1280: "sdxl", 2048: "sdxl"}  # 1280: XL refiner
_UNET_INPUTS = {8: "InstructPix2Pix (8 input channels)", 5: "a depth model (5 input channels)"}


class _Problem(Exception):
    """The file cannot be judged; the message is the ``problem`` shown beside its name."""


def classify_path(path: Path) -> Classification:
    """A file or a diffusers folder; never raises (problems are in the result)."""
    try:
        if path.is_dir():
            return inspect_diffusers_folder(path)
        return inspect_file(path)
    except OSError as e:
        return _unreadable(e)


def classify_file(path: Path) -> Classification:
    """A single model file, from its header; never raises (problems are in the result)."""
    try:
        return inspect_file(path)
    except OSError as e:
        return _unreadable(e)


def classify_diffusers_folder(folder: Path) -> Classification:
    """A diffusers model folder, from its JSON files; never raises."""
    try:
        return inspect_diffusers_folder(folder)
    except OSError as e:
        return _unreadable(e, "checkpoint")


def _unreadable(e: OSError, kind: str = "unknown") -> Classification:
    reason = "permission denied" if isinstance(e, PermissionError) else (e.strerror or str(e))
    return Classification(kind, problem=f"cannot be read: {reason}")


def inspect_file(path: Path) -> Classification:
    """Like ``classify_file``, but an I/O failure raises OSError (the scan does not cache it)."""
    size = os.stat(path).st_size
    if size == 0:
        return Classification("unknown", problem="0-byte file (an interrupted download?)")
    with open(path, "rb") as f:
        head = f.read(9)
        try:
            if head.startswith(ZIP_MAGIC):
                return _classify_pickle(_zip_pickle(path))
            if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
                return _classify_pickle(_legacy_pickle(f))
            if len(head) == 9 and head[8:9] == b"{":
                shapes, problem = _safetensors_shapes(f, size)
                found = classify_shapes(shapes)
                return _with_problem(found, problem) if problem else found
        except _Problem as p:
            return Classification("unknown", problem=str(p))
    return Classification("unknown", problem="not a model file (neither safetensors nor torch)")


def _with_problem(c: Classification, problem: str) -> Classification:
    return Classification(c.kind, c.family, c.inpainting, problem)


# --- safetensors ------------------------------------------------------------------------------


def _safetensors_shapes(f: io.BufferedReader, size: int) -> tuple[dict[str, tuple], str]:
    """Key -> shape from the header, and "" or why the data cannot all be there."""
    f.seek(0)
    (header_len,) = struct.unpack("<Q", f.read(8))
    if not 2 <= header_len <= MAX_SAFETENSORS_HEADER:
        raise _Problem("damaged header (impossible length)")
    if 8 + header_len > size:
        raise _Problem("incomplete: the file ends inside its header (an interrupted download?)")
    try:
        header = json.loads(f.read(header_len))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Problem("damaged header (not valid JSON)") from None
    if not isinstance(header, dict):
        raise _Problem("damaged header (not a table of tensors)")
    header.pop("__metadata__", None)
    shapes, data_end = {}, 0
    for key, info in header.items():
        shape, offsets = _entry(info)
        if shape is None:
            raise _Problem(f"damaged header (the entry for {key[:80]!r} is malformed)")
        shapes[key] = shape
        data_end = max(data_end, offsets[1])
    if data_end > size - 8 - header_len:
        return shapes, "incomplete: the file ends before its last tensor (interrupted download?)"
    return shapes, ""


def _entry(info: object) -> tuple[tuple[int, ...] | None, tuple[int, int]]:
    if not isinstance(info, dict):
        return None, (0, 0)
    shape, offsets = info.get("shape"), info.get("data_offsets")
    if not (isinstance(shape, list) and isinstance(offsets, list)):
        return None, (0, 0)
    ok = (
        all(isinstance(d, int) and 0 <= d < 2**31 for d in shape)
        and len(offsets) == 2
        and all(isinstance(o, int) for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    )
    if not ok:
        return None, (0, 0)
    return tuple(shape), (offsets[0], offsets[1])


# --- pickles --------------------------------------------------------------------------------


def _zip_pickle(path: Path) -> PickleSummary:
    """torch's zip format: ``<archive>/data.pkl`` holds the structure, ``data/<n>`` the bytes."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [i for i in archive.infolist() if i.filename.rpartition("/")[2] == "data.pkl"]
            if not pickles:
                raise _Problem("a zip archive without data.pkl: not a PyTorch checkpoint")
            info = min(pickles, key=lambda i: i.filename.count("/"))
            if info.file_size > MAX_PICKLE_BYTES:
                raise _Problem("its pickle is too large to inspect")
            with archive.open(info) as f:
                data = f.read(MAX_PICKLE_BYTES + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError):
        raise _Problem("damaged or incomplete archive (an interrupted download?)") from None
    except RuntimeError:  # an encrypted member
        raise _Problem("an encrypted zip archive: not a PyTorch checkpoint") from None
    return _read_pickle(io.BytesIO(data))


def _legacy_pickle(f: io.BufferedReader) -> PickleSummary:
    """torch.save before 1.6 (and plain pickles): magic, protocol, system info, then the data,
    each a pickle of its own, followed by the raw storages, which are not read."""
    f.seek(0)
    stream = io.BytesIO(f.read(MAX_PICKLE_BYTES))
    first = _read_pickle(stream)
    if first.obj != LEGACY_TORCH_MAGIC:
        return first
    for _ in range(2):  # protocol version, system info
        _read_pickle(stream)
    return _read_pickle(stream)


def _read_pickle(stream: io.BytesIO) -> PickleSummary:
    try:
        return read_pickle(stream)
    except UnreadablePickle as e:
        raise _Problem(f"damaged or unusual pickle, not inspected ({e})") from None


def _classify_pickle(summary: PickleSummary) -> Classification:
    shapes = pickle_shapes(summary.obj)
    found = classify_shapes(shapes) if shapes else Classification("unknown")
    unsafe = summary.unsafe_globals()
    if unsafe:
        names = ", ".join(str(g) for g in unsafe[:3])
        return _with_problem(
            found,
            f"unsafe pickle: it asks for {names}, which is not plain weights; it would be "
            "refused when loaded (nothing in it was run)",
        )
    if not shapes:
        return _with_problem(found, "a pickle without tensors: not a model file")
    return found


# --- kinds and families from key -> shape --------------------------------------------------


def classify_shapes(shapes: Shapes) -> Classification:
    """Kind, family and inpainting of a file with these tensors (keys with their prefixes)."""
    if not shapes:
        return Classification("unknown", problem="holds no tensors")
    kind = file_kind(shapes)
    if kind == "checkpoint":
        return _classify_checkpoint(shapes)
    if kind == "lora":
        return Classification("lora", _lora_family(shapes))
    if kind == "embedding":
        return Classification("embedding", _embedding_family(shapes))
    if kind == "controlnet":
        return Classification("controlnet", _context_family(shapes))
    if kind == "vae":
        return _classify_vae(shapes)
    if kind == "unknown" and _is_diffusers_embedding(shapes):
        widths = {s[-1] for s in shapes.values()}
        return Classification("embedding", _FAMILY_BY_CONTEXT.get(widths.pop()))
    parts = {
        "text-encoder": "only a text encoder",
        "vae+text-encoder": "a VAE and a text encoder, no UNet",
        "unet": "only a UNet, without VAE and text encoder",
    }
    return Classification("unknown", problem=parts.get(kind, "not a Stable Diffusion model"))


def _classify_checkpoint(shapes: Shapes) -> Classification:
    stem = unet_shapes(shapes).get("input_blocks.0.0.weight", ())  # (channels, in, 3, 3)
    in_channels = stem[1] if len(stem) == 4 else None
    inpainting = in_channels == SD1.inpainting_in_channels
    try:
        foreign = foreign_family(shapes)
    except CheckpointError:  # no cross-attention at all
        return Classification("checkpoint", None, False, "not a text-to-image model")
    if foreign is not None:
        family = foreign[0]
        problem = f"{FAMILY_NAMES[family]}: not supported yet" if family else "unknown UNet layout"
        return Classification("checkpoint", family, inpainting, problem)
    try:
        detect_family(shapes)
    except CheckpointError:
        what = _UNET_INPUTS.get(in_channels or 0, f"a UNet with {in_channels} input channels")
        return Classification("checkpoint", "sd1", False, f"{what}: not supported yet")
    return Classification("checkpoint", "sd1", inpainting, _missing_parts(shapes))


def _missing_parts(shapes: Shapes) -> str:
    missing = [
        what
        for prefix, what in ((SD1.vae_prefix, "VAE"), (SD1.text_encoder_prefix, "text encoder"))
        if not any(k.startswith(prefix) for k in shapes)
    ]
    return f"incomplete: no {' and no '.join(missing)} in the file" if missing else ""


def _context_family(shapes: Shapes) -> str | None:
    """The family a UNet-like network belongs to, by its cross-attention (text) width."""
    for key, shape in shapes.items():
        if key.endswith("attn2.to_k.weight") and len(shape) == 2:
            return _FAMILY_BY_CONTEXT.get(shape[1])
    return None


_LORA_DOWN = ("lora_down", "lora.down", "lora_A")


def _lora_family(shapes: Shapes) -> str | None:
    if any(k.startswith(("lora_te1_", "lora_te2_")) for k in shapes):
        return "sdxl"  # two text encoders
    for key, shape in shapes.items():
        if not any(m in key for m in _LORA_DOWN) or len(shape) != 2:
            continue
        if "attn2_to_k" in key or "attn2.to_k" in key:  # (rank, context width)
            return _FAMILY_BY_CONTEXT.get(shape[1])
    for key, shape in shapes.items():  # text-encoder-only LoRAs: (rank, hidden width)
        if key.startswith("lora_te_") and "lora_down" in key and len(shape) == 2:
            return {768: "sd1", 1024: "sd2"}.get(shape[1])
    return None


def _embedding_family(shapes: Shapes) -> str | None:
    if "clip_g" in shapes:
        return "sdxl"  # one vector set per text encoder
    widths = {s[-1] for k, s in shapes.items() if s and k.startswith(("emb_params", "string_to"))}
    return _FAMILY_BY_CONTEXT.get(widths.pop()) if len(widths) == 1 else None


def _is_diffusers_embedding(shapes: Shapes) -> bool:
    """diffusers' learned_embeds: {"<token>": (width,) or (vectors, width)}, a few entries."""
    return len(shapes) <= 8 and all(
        "." not in k and 1 <= len(s) <= 2 and s[-1] in (768, 1024) for k, s in shapes.items()
    )


def _classify_vae(shapes: Shapes) -> Classification:
    """SD 1.x, 2.x and XL VAEs share one layout, so the family stays open; 16 latent channels
    are SD3's and Flux's."""
    for key, shape in shapes.items():
        if key.endswith("decoder.conv_in.weight") and len(shape) == 4 and shape[1] != 4:
            return Classification("vae", None, False, f"{shape[1]}-channel VAE: not for SD")
    return Classification("vae", None)


# --- diffusers folders --------------------------------------------------------------------------

DIFFUSERS_INDEX = "model_index.json"
DIFFUSERS_PARTS = ("unet", "vae", "text_encoder")
_WEIGHT_SUFFIXES = ("safetensors", "bin")
_WEIGHT_PREFERENCE = (("", "safetensors"), ("", "bin"), ("fp16", "safetensors"), ("fp16", "bin"))


def diffusers_weight_files(folder: Path) -> list[Path]:
    """The weights the loader would read: per part, the plain files if any, else fp16 ones
    (every shard of the chosen kind)."""
    files: list[Path] = []
    for part in DIFFUSERS_PARTS:
        try:
            names = sorted(os.listdir(folder / part))
        except OSError:
            continue
        groups: dict[tuple[str, str], list[str]] = {}
        for name in names:
            stem, dot, suffix = name.rpartition(".")
            if dot and suffix in _WEIGHT_SUFFIXES:
                # "diffusion_pytorch_model.fp16-00001-of-00002": variant "fp16"
                variant = stem.partition(".")[2].split("-")[0]
                groups.setdefault((variant, suffix), []).append(name)
        chosen = next((groups[key] for key in _WEIGHT_PREFERENCE if key in groups), [])
        files += [folder / part / name for name in chosen]
    return files


def inspect_diffusers_folder(folder: Path) -> Classification:
    """Like ``classify_diffusers_folder``, but an I/O failure raises OSError."""
    if not (folder / DIFFUSERS_INDEX).exists() and not (folder / "unet").is_dir():
        return Classification("unknown", problem="a folder, not a diffusers model")
    try:
        index = _read_json(folder, DIFFUSERS_INDEX)
        unet = _read_json(folder, "unet/config.json")
    except _Problem as p:
        return Classification("checkpoint", None, False, str(p))
    pipeline = str(index.get("_class_name", ""))
    inpainting = unet.get("in_channels") == SD1.inpainting_in_channels
    if not (folder / "unet").is_dir() and (folder / "transformer").is_dir():
        what = pipeline or "a transformer (DiT) model"
        return Classification("checkpoint", None, False, f"{what}: not supported")
    family = _diffusers_family(folder, pipeline, unet)
    if family != "sd1":
        problem = f"{FAMILY_NAMES[family]}: not supported yet" if family else "unknown UNet"
        return Classification("checkpoint", family, inpainting, problem)
    have = {p.parent.name for p in diffusers_weight_files(folder)}
    missing = [part for part in DIFFUSERS_PARTS if part not in have]
    problem = f"incomplete: no {', '.join(missing)} weights" if missing else ""
    if unet.get("in_channels") not in (None, SD1.latent_channels, SD1.inpainting_in_channels):
        problem = f"a UNet with {unet.get('in_channels')} input channels: not supported yet"
    return Classification("checkpoint", "sd1", inpainting, problem)


def _diffusers_family(folder: Path, pipeline: str, unet: Mapping[str, Any]) -> str | None:
    context = unet.get("cross_attention_dim")
    if isinstance(context, list):  # per-block widths: SDXL-style UNets only
        context = max((c for c in context if isinstance(c, int)), default=None)
    if (folder / "text_encoder_2").is_dir() or "XL" in pipeline:
        return "sdxl"
    if unet.get("addition_embed_type") == "text_time":
        return "sdxl"
    return _FAMILY_BY_CONTEXT.get(context) if isinstance(context, int) else None


def _read_json(folder: Path, name: str) -> dict[str, Any]:
    """A small JSON object in a model folder; {} when the file is absent."""
    path = folder / name
    try:
        if path.stat().st_size > 1024 * 1024:
            raise _Problem(f"damaged {name} (too large for a config)")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _Problem(f"damaged {name} ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise _Problem(f"damaged {name} (not a JSON object)")
    return data
