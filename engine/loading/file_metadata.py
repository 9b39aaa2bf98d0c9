"""Facts about a model that its weights cannot tell, kept in its safetensors file's metadata.

A safetensors header may hold ``"__metadata__"``: a flat map of strings to strings (the format:
https://github.com/huggingface/safetensors, "Format"). Our own files (the built-in demo model)
put there, all values strings:

- ``latentdesk.name``: what a person sees ("Demo (shapes)"); also the PNG's ``Model:``.
- ``latentdesk.native_size``: the training resolution, pixels per side ("128").
- ``latentdesk.latent_rgb``: JSON (latent channels x 3) list, x0 latent -> RGB in [-1, 1], the
  preview factors fitted to this model's VAE (the family's are fitted to SD's).
- ``latentdesk.latent_rgb_bias``: JSON list of 3 floats added to that RGB.
- ``latentdesk.latent_scale``: the VAE latents' scale factor, when not the family's.

The metadata is text from a file: anything malformed (a wrong shape, NaN, a huge string) is
ignored and the family's value used, never an error. Only the header is read, and this module
imports no torch, so the CLI can learn a model's size before the slow imports.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from engine.family import RGB, LatentRGB, ModelFamily

PREFIX = "latentdesk."
MAX_HEADER = 100 * 1024 * 1024  # as the loader: real headers are < 1 MB
MAX_VALUE = 4096  # characters: a 4x3 matrix in JSON is ~100; longer is not ours
MAX_NAME = 80
MAX_FACTOR = 100.0  # preview factors and biases are O(1); a scale factor is < 1
SIZE_RANGE = (64, 2048)  # engine.api's MIN_SIZE, MAX_SIZE (not imported: it pulls in numpy)


@dataclass(frozen=True)
class ModelMetadata:
    """What a file's metadata says; empty or None where it says nothing usable."""

    name: str = ""
    native_size: int = 0
    latent_rgb: LatentRGB | None = None
    latent_rgb_bias: RGB | None = None
    latent_scale: float | None = None


NO_METADATA = ModelMetadata()


def read_raw_metadata(path: Path) -> dict[str, str]:
    """The string entries of a safetensors file's ``__metadata__``, from the header alone;
    {} for any other file, a folder, or a header that cannot be read."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return {}
            (length,) = struct.unpack("<Q", head)
            if not 2 <= length <= MAX_HEADER:
                return {}
            header = json.loads(f.read(length))
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return {}
    raw = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}


def parse_metadata(raw: Mapping[str, str], latent_channels: int) -> ModelMetadata:
    """Our entries of ``raw``, each checked on its own: a bad one is dropped, the rest kept."""

    def value(key: str) -> str | None:
        text = raw.get(PREFIX + key)
        return text if isinstance(text, str) and len(text) <= MAX_VALUE else None

    return ModelMetadata(
        name=_name(value("name")),
        native_size=_native_size(value("native_size")),
        latent_rgb=_matrix(value("latent_rgb"), latent_channels),
        latent_rgb_bias=_rgb(_json(value("latent_rgb_bias"))),
        latent_scale=_scale(value("latent_scale")),
    )


def read_metadata(path: Path, latent_channels: int) -> ModelMetadata:
    """``parse_metadata`` of the file at ``path``; never raises."""
    return parse_metadata(read_raw_metadata(path), latent_channels)


def with_metadata(family: ModelFamily, meta: ModelMetadata) -> ModelFamily:
    """The family's descriptor with the file's own preview factors, latent scale and native
    size; the family itself when the file gives none of them."""
    changes: dict[str, object] = {}
    if meta.latent_rgb is not None:
        changes["latent_rgb"] = meta.latent_rgb
        changes["latent_rgb_bias"] = meta.latent_rgb_bias or (0.0, 0.0, 0.0)
    if meta.latent_scale is not None:
        changes["latent_scale"] = meta.latent_scale
    if meta.native_size:
        changes["native_size"] = meta.native_size
    return replace(family, **changes) if changes else family  # type: ignore[arg-type]


# --- one checker per entry ---------------------------------------------------------------------


def _name(text: str | None) -> str:
    """A one-line name of printable characters: it goes into PNG parameters and window titles."""
    if text is None:
        return ""
    name = text.strip()
    if len(name) > MAX_NAME or not name.isprintable():
        return ""
    return name


def _native_size(text: str | None) -> int:
    if text is None or not (text.isascii() and text.strip().isdigit()):
        return 0
    size = int(text)
    low, high = SIZE_RANGE
    return size if low <= size <= high and size % 8 == 0 else 0


def _json(text: str | None) -> object:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _finite(x: object) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    value = float(x)
    return value if math.isfinite(value) and abs(value) <= MAX_FACTOR else None


def _rgb(row: object) -> RGB | None:
    if not isinstance(row, list) or len(row) != 3:
        return None
    r, g, b = (_finite(x) for x in row)
    return None if r is None or g is None or b is None else (r, g, b)


def _matrix(text: str | None, latent_channels: int) -> LatentRGB | None:
    rows = _json(text)
    if not isinstance(rows, list) or len(rows) != latent_channels:
        return None
    matrix = [_rgb(row) for row in rows]
    if any(row is None for row in matrix):
        return None
    return tuple(row for row in matrix if row is not None)


def _scale(text: str | None) -> float | None:
    value = _finite(_json(text))
    return value if value is not None and value > 0 else None
