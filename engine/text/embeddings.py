"""Textual-inversion embedding files -> (vectors, width) float32 tensors.

Layouts read (as A1111's ``create_embedding_from_data`` in
``modules/textual_inversion/textual_inversion.py`` does):

- A1111 ``.pt`` / ``.bin``: ``{"string_to_param": {"*": (vectors, width)}, "name": ..., ...}``,
  read with ``torch.load(weights_only=True)``: a pickle that wants to run code is refused.
- A1111 / kohya ``.safetensors``: ``{"emb_params": (vectors, width)}``.
- diffusers ``learned_embeds``: one key (the token) holding ``(width,)`` or ``(vectors, width)``.
- SDXL (``clip_l`` + ``clip_g``) files are recognised, to be refused by name.

Files are cached by (path, size, mtime), so an edited file is read again. The TI hash written to
the metadata is A1111's: the first 12 hex digits of the file's sha256.
"""

from __future__ import annotations

import os
import pickle
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.errors import EmbeddingError
from engine.library.hashing import sha256_file

TI_HASH_LEN = 12  # A1111's Embedding.shorthash
_FAMILY_BY_WIDTH = {768: "SD1", 1024: "SD2", 1280: "SDXL"}
_MAX_VECTORS = 75  # one chunk; A1111 would loop forever on a longer embedding


@dataclass(frozen=True)
class Embedding:
    name: str  # what the prompt says: the file stem
    path: Path
    vectors: torch.Tensor  # (vectors, width) float32, CPU
    short_hash: str  # 12 hex digits of the file's sha256

    @property
    def count(self) -> int:
        return self.vectors.shape[0]

    @property
    def width(self) -> int:
        return self.vectors.shape[1]


_cache: dict[tuple[str, int, int], Embedding] = {}
_cache_lock = threading.Lock()


def load_embedding(path: Path, name: str | None = None) -> Embedding:
    """The embedding in ``path`` (named ``name``, by default the file stem), from the cache when
    the file has not changed. Raises EmbeddingError naming the file when it cannot be used."""
    path = Path(path)
    name = name or path.stem
    try:
        stat = os.stat(path)
    except OSError as e:
        raise EmbeddingError(f"The embedding {name} ({path}) cannot be read: {e.strerror}.") from e
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None and cached.name == name:
        return cached
    vectors = _vectors(path, name)
    embedding = Embedding(name, path, vectors, sha256_file(path)[:TI_HASH_LEN])
    with _cache_lock:
        for old in [k for k in _cache if k[0] == key[0]]:
            del _cache[old]  # an older version of the same file
        _cache[key] = embedding
    return embedding


def check_width(embedding: Embedding, width: int) -> None:
    """Refuse an embedding made for a text encoder of another width, naming both."""
    if embedding.width == width:
        return
    made_for = _FAMILY_BY_WIDTH.get(embedding.width)
    what = f"an {made_for} embedding" if made_for else "an embedding"
    mine = _FAMILY_BY_WIDTH.get(width, "this model")
    raise EmbeddingError(
        f"{embedding.name} ({embedding.path.name}) is {what}: {embedding.width} wide, this "
        f"model's text encoder is {width}. Use an embedding made for {mine} models, or take "
        f"{embedding.name} out of the prompt."
    )


def _vectors(path: Path, name: str) -> torch.Tensor:
    data = _read(path, name)
    tensor = _find_vectors(data, path, name)
    if tensor.ndim == 1:
        tensor = tensor[None]  # diffusers stores a single vector as (width,)
    if tensor.ndim != 2 or tensor.shape[0] == 0 or not tensor.is_floating_point():
        raise EmbeddingError(
            f"{name} ({path.name}) holds a tensor of shape {tuple(tensor.shape)}, not "
            "(vectors, width): it is not a textual-inversion embedding."
        )
    if tensor.shape[0] > _MAX_VECTORS:
        raise EmbeddingError(
            f"{name} ({path.name}) has {tensor.shape[0]} vectors; at most {_MAX_VECTORS} fit "
            "in a prompt chunk."
        )
    return tensor.detach().to(device="cpu", dtype=torch.float32)


def _read(path: Path, name: str) -> object:
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise EmbeddingError(f"The embedding {name} ({path.name}) is damaged: {e}.") from e
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise EmbeddingError(
            f"The embedding {name} ({path.name}) was refused: it asks to run code or load "
            "objects that are not plain tensors. Use a .safetensors version of it."
        ) from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise EmbeddingError(f"The embedding {name} ({path.name}) is damaged: {e}.") from e


def _find_vectors(data: object, path: Path, name: str) -> torch.Tensor:
    if not isinstance(data, dict):
        raise _not_an_embedding(path, name)
    if "string_to_param" in data:  # A1111 .pt
        params = data["string_to_param"]
        if not isinstance(params, dict) or len(params) != 1:
            raise EmbeddingError(f"{name} ({path.name}) holds several terms; use one per file.")
        return _tensor(next(iter(params.values())), path, name)
    if "clip_g" in data and "clip_l" in data:  # SDXL: one set per text encoder
        width = _tensor(data["clip_g"], path, name).shape[-1]
        raise EmbeddingError(
            f"{name} ({path.name}) is an SDXL embedding: {width} wide (with a CLIP-L part), "
            "for SDXL's two text encoders. This model's text encoder takes SD1 embeddings."
        )
    if "emb_params" in data:  # A1111 / kohya .safetensors
        return _tensor(data["emb_params"], path, name)
    tensors = [v for v in data.values() if isinstance(v, torch.Tensor)]
    if len(data) == 1 and len(tensors) == 1:  # diffusers learned_embeds: {"<token>": ...}
        return tensors[0]
    raise _not_an_embedding(path, name)


def _tensor(value: object, path: Path, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise _not_an_embedding(path, name)
    return value


def _not_an_embedding(path: Path, name: str) -> EmbeddingError:
    return EmbeddingError(
        f"{name} ({path.name}) is not a textual-inversion embedding (no string_to_param, "
        "emb_params or single vector tensor in it)."
    )
