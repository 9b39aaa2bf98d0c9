"""NovelAI's PNG texts.

NovelAI writes tEXt chunks ``Title`` ("NovelAI generated image" or "AI generated image"),
``Description`` (the prompt), ``Software`` ("NovelAI"), ``Source`` (the model, e.g. "Stable
Diffusion XL C1E1DE52"), ``Generation time`` and ``Comment``, a JSON object: ``uc`` (the
negative prompt), ``steps``, ``scale`` (guidance), ``seed``, ``sampler`` (k-diffusion names:
``k_euler_ancestral``), ``noise_schedule`` (newer files), ``width`` and ``height`` (newer
files; older ones: the picture's size), ``strength`` and ``noise``. This is the layout read by
A1111's ``modules/images.py`` (``read_info_from_image``) and receyuki's
stable-diffusion-prompt-reader (``sd_prompt_reader/format/novelai.py``). Parameters hidden in
the alpha channel ("stealth" metadata) are not read.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.gallery.formats.values import (
    as_float,
    as_int,
    as_text,
    bounded,
    load_json_object,
    settings_of,
)
from engine.gallery.recovered import RecoveredParameters

TOOL = "NovelAI"


def is_novelai(texts: Mapping[str, str]) -> bool:
    return texts.get("Software", "").strip() == "NovelAI" and "Comment" in texts


def read_novelai(
    texts: Mapping[str, str], size: tuple[int, int] | None
) -> RecoveredParameters | None:
    comment = texts.get("Comment")
    data = load_json_object(comment) or {}
    prompt = texts.get("Description", as_text(data.get("prompt")))
    width, height = as_int(data.get("width")), as_int(data.get("height"))
    notes: tuple[str, ...] = ()
    if (width is None or height is None) and size is not None:
        width, height = size  # older files leave the size to the picture itself
        notes = ("The size is the picture's own: this NovelAI file does not write one.",)
    if not data and prompt is None:
        return None
    return RecoveredParameters(
        tool=TOOL,
        prompt=prompt,
        negative_prompt=as_text(data.get("uc")),
        seed=as_int(data.get("seed")),
        steps=as_int(data.get("steps")),
        cfg_scale=as_float(data.get("scale")),
        sampler=as_text(data.get("sampler")),
        schedule=as_text(data.get("noise_schedule")),
        width=width,
        height=height,
        model=texts.get("Source"),
        settings=settings_of(data, skip=("prompt", "uc", "signed_hash")),
        notes=notes,
        text=bounded(comment),
    )
