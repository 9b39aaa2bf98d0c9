"""Generation parameters from any tool's image file, as one ``RecoveredParameters`` record.

PNG text chunks are read by ``png_chunks`` (bounded), JPEG and WebP EXIF by ``exif_text``; the
texts found decide the format, read by one module each in ``engine.gallery.formats``:

=========================  ==================================================  ============
texts                      format                                              tool
=========================  ==================================================  ============
``invokeai_metadata``      InvokeAI 3+ JSON                                    InvokeAI
``sd-metadata``/``Dream``  InvokeAI 2.x JSON / command line                    InvokeAI
``Software`` + ``Comment`` NovelAI                                             NovelAI
``fooocus_scheme`` or      Fooocus JSON, or its A1111-style text               Fooocus
Fooocus-shaped JSON
``parameters``             A1111 text (``Version`` tells Latentdesk, Fooocus)  A1111, ...
``prompt``/``workflow``    ComfyUI API graph, else UI graph                    ComfyUI
=========================  ==================================================  ============

Nothing found is ever executed; every reader checks types and bounds. A seed outside the
0..2**32-1 range this app samples with (ComfyUI allows up to 2**64-1) is kept and explained in
``notes``; so are problems met while reading the file (a damaged chunk, a cut-off file).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import BinaryIO

from engine.api import MAX_SEED
from engine.gallery.exif_text import exif_block_texts, read_exif_texts
from engine.gallery.formats.a1111 import read_a1111
from engine.gallery.formats.comfyui import read_comfyui
from engine.gallery.formats.fooocus import is_fooocus_json, read_fooocus
from engine.gallery.formats.invokeai import read_dream, read_invokeai_v2, read_invokeai_v3
from engine.gallery.formats.novelai import is_novelai, read_novelai
from engine.gallery.formats.values import load_json_object
from engine.gallery.png_chunks import read_png_text
from engine.gallery.recovered import RecoveredParameters

Source = str | os.PathLike[str] | bytes | BinaryIO


def read_metadata(source: Source) -> RecoveredParameters | None:
    """The parameters in an image file (a path, its bytes or a binary file), or None when it
    holds none. Never raises on the file's content; an unreadable path gives None."""
    start = _position(source)
    png = read_png_text(source)
    if png.is_png:
        texts = exif_block_texts(png.exif) if png.exif else {}
        texts.update({chunk.keyword: chunk.text for chunk in reversed(png.chunks)})  # 1st wins
        size = (png.width, png.height) if png.width and png.height else None
        problems = png.problems
    else:
        if start is not None:
            source.seek(start)  # type: ignore[union-attr]
        texts, size, problems = read_exif_texts(source), None, ()
    record = read_texts(texts, size)
    if record is None or not problems:
        return record
    notes = [f"While reading the file: {problem}." for problem in problems]
    return replace(record, notes=(*record.notes, *notes))


def read_texts(
    texts: dict[str, str], size: tuple[int, int] | None = None
) -> RecoveredParameters | None:
    """The record for the texts of one file (PNG keywords, or the EXIF names that
    ``read_exif_texts`` gives); ``size`` is the picture's, for formats that rely on it."""
    record = _read_format(texts, size)
    return _with_seed_note(record) if record is not None else None


def _read_format(texts: dict[str, str], size: tuple[int, int] | None) -> RecoveredParameters | None:
    if "invokeai_metadata" in texts:
        return read_invokeai_v3(texts["invokeai_metadata"])
    if "sd-metadata" in texts:
        return read_invokeai_v2(texts["sd-metadata"], texts.get("Dream"))
    if "Dream" in texts:
        return read_dream(texts["Dream"])
    if is_novelai(texts):
        return read_novelai(texts, size)
    parameters = texts.get("parameters", texts.get("UserComment"))
    if parameters is not None and _is_fooocus(texts, parameters):
        return read_fooocus(parameters)
    graph = "prompt" in texts or "workflow" in texts
    record = read_a1111(parameters) if parameters is not None else None
    if record is not None and graph and record.tool == "A1111":
        # A ComfyUI save node that writes both: its A1111 text says it plainly, unless it
        # is a bare prompt, when the graph says more.
        if not record.settings:
            return read_comfyui(texts.get("prompt"), texts.get("workflow"))
        return replace(record, tool="ComfyUI")
    if record is not None:
        return record
    return read_comfyui(texts.get("prompt"), texts.get("workflow")) if graph else None


def _is_fooocus(texts: dict[str, str], parameters: str) -> bool:
    if "fooocus_scheme" in texts or texts.get("Software", "").startswith("Fooocus"):
        return True
    data = load_json_object(parameters) if parameters.lstrip().startswith("{") else None
    return data is not None and is_fooocus_json(data)


def _with_seed_note(record: RecoveredParameters) -> RecoveredParameters:
    seed = record.seed
    if seed is None or 0 <= seed <= MAX_SEED:
        return record
    note = (
        f"The seed {seed} is outside 0..{MAX_SEED}, the seeds this app can use: "
        "it is shown but cannot be reused."
    )
    return replace(record, notes=(*record.notes, note))


def _position(source: object) -> int | None:
    """Where an open file stands, to read it again from there; None for paths and bytes."""
    tell = getattr(source, "tell", None)
    try:
        return tell() if tell is not None else None
    except (OSError, ValueError):
        return None
