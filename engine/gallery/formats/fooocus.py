"""Fooocus's parameters, in either of its two schemes (``modules/meta_parser.py``).

The PNG gets a ``parameters`` text and a ``fooocus_scheme`` text (``modules/private_logger.py``).
With the "fooocus" scheme, ``parameters`` is a JSON object with sorted keys: ``prompt`` and
``negative_prompt`` as typed, ``full_prompt`` and ``full_negative_prompt`` (lists: the prompt
after styles and the "Fooocus V2" expansion, what the model saw), ``steps``, ``guidance_scale``,
``sampler`` and ``scheduler`` (ComfyUI's names, e.g. ``dpmpp_2m_sde_gpu``, ``karras``),
``seed`` (a string), ``resolution`` (``"(1152, 896)"``), ``base_model``, ``base_model_hash``
(sha256, first 10 hex digits), ``version`` (``"Fooocus v2.5.5"``), and more. With the "a1111"
scheme it is an A1111 text whose prompt is the expanded one, with ``Raw prompt`` in the settings
and ``Version: Fooocus v...``. JPEG and WebP carry the same text in EXIF (see exif_text.py).
"""

from __future__ import annotations

import re

from engine.gallery.formats.a1111 import read_a1111
from engine.gallery.formats.values import (
    as_float,
    as_int,
    as_text,
    bounded,
    load_json_object,
    settings_of,
)
from engine.gallery.recovered import RecoveredParameters

TOOL = "Fooocus"
_RESOLUTION_RE = re.compile(r"\(\s*(\d{1,6})\s*,\s*(\d{1,6})\s*\)")
# Keys of the JSON scheme that no other tool's ``parameters`` JSON has together.
SIGNATURE_KEYS = ("guidance_scale", "resolution", "base_model")
_EXPANDED_NOTE = (
    "Fooocus adds its styles and prompt expansion to what was typed: the prompt shown is the "
    "expanded one the model saw; the typed one is in the settings."
)


def is_fooocus_json(data: dict) -> bool:
    return all(key in data for key in SIGNATURE_KEYS) or str(data.get("version", "")).startswith(
        "Fooocus"
    )


def read_fooocus(text: str) -> RecoveredParameters | None:
    """Either scheme: a JSON object, else an A1111 text."""
    data = load_json_object(text)
    if data is None:
        return _read_a1111_scheme(text)
    typed = as_text(data.get("prompt"))
    prompt = _joined(data.get("full_prompt"), typed)
    negative = _joined(data.get("full_negative_prompt"), as_text(data.get("negative_prompt")))
    width, height = _resolution(as_text(data.get("resolution")))
    return RecoveredParameters(
        tool=TOOL,
        prompt=prompt,
        negative_prompt=negative,
        seed=as_int(data.get("seed")),
        steps=as_int(data.get("steps")),
        cfg_scale=as_float(data.get("guidance_scale")),
        sampler=as_text(data.get("sampler")),
        schedule=as_text(data.get("scheduler")),
        width=width,
        height=height,
        model=as_text(data.get("base_model")),
        model_hash=as_text(data.get("base_model_hash")),
        settings=settings_of(data, skip=("full_prompt", "full_negative_prompt")),
        notes=(_EXPANDED_NOTE,) if typed is not None and prompt != typed else (),
        text=bounded(text),
    )


def _read_a1111_scheme(text: str) -> RecoveredParameters | None:
    record = read_a1111(text, tool=TOOL)
    if record is None:
        return None
    typed = record.settings.get("Raw prompt")
    if typed is not None and typed != record.prompt:
        return _with_note(record, _EXPANDED_NOTE)
    return record


def _with_note(record: RecoveredParameters, note: str) -> RecoveredParameters:
    from dataclasses import replace

    return replace(record, notes=(*record.notes, note))


def _joined(parts: object, fallback: str | None) -> str | None:
    """Fooocus's A1111 scheme joins the expanded prompts with ", "; the same here."""
    if isinstance(parts, list):
        texts = [p for p in parts[:100] if isinstance(p, str)]
        if texts:
            return ", ".join(texts)
    return fallback


def _resolution(text: str | None) -> tuple[int | None, int | None]:
    match = _RESOLUTION_RE.fullmatch(text.strip()) if text else None
    return (int(match.group(1)), int(match.group(2))) if match else (None, None)
