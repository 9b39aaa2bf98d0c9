"""How many vectors a textual-inversion embedding holds, from its header alone.

The token counter counts an embedding's vectors, not the tokens of its name; this reads the
count without loading the tensors (and without torch), the way the library classifies files:
the safetensors JSON header, or torch's pickle walked opcode by opcode, never unpickled.
Layouts: A1111 ``.pt`` ``string_to_param.*`` (vectors, width); A1111/kohya ``.safetensors``
``emb_params`` (vectors, width); SDXL ``clip_l``/``clip_g``; diffusers ``learned_embeds``, one
key (the token) of shape (width,) or (vectors, width).
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.family import Shapes
from engine.library.classify import (
    ZIP_MAGIC,
    _legacy_pickle,
    _Problem,
    _safetensors_shapes,
    _zip_pickle,
)
from engine.library.pickle_scan import state_dict_shapes

# The keys holding the vectors, in the order they are looked for.
_VECTOR_KEYS = ("string_to_param.*", "emb_params", "clip_l")


def embedding_vectors(path: str | Path) -> int | None:
    """The number of vectors of the embedding file at ``path``; None when it cannot be told
    (unreadable, damaged, or not an embedding). Never raises."""
    try:
        return vectors_from_shapes(_header_shapes(Path(path)))
    except (OSError, _Problem, ValueError):
        return None


def vectors_from_shapes(shapes: Shapes) -> int | None:
    for key in _VECTOR_KEYS:
        if key in shapes:
            return _rows(shapes[key])
    if len(shapes) == 1:  # diffusers' learned_embeds: {"<token>": ...}
        return _rows(next(iter(shapes.values())))
    return None


def _rows(shape: tuple[int, ...]) -> int | None:
    if len(shape) == 1:
        return 1
    return shape[0] if len(shape) == 2 and shape[0] > 0 else None


def _header_shapes(path: Path) -> Shapes:
    size = os.stat(path).st_size
    with open(path, "rb") as f:
        head = f.read(9)
        if head.startswith(ZIP_MAGIC):
            return state_dict_shapes(_zip_pickle(path).obj)
        if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
            return state_dict_shapes(_legacy_pickle(f).obj)
        if len(head) == 9 and head[8:9] == b"{":
            return _safetensors_shapes(f, size)[0]
    return {}
