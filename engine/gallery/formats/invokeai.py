"""InvokeAI's PNG texts, three generations of them.

- 3.0 and later: ``invokeai_metadata``, the JSON of its CoreMetadata node
  (``invokeai/app/invocations/metadata.py``; written by
  ``app/services/image_files/image_files_disk.py``): ``positive_prompt``,
  ``negative_prompt``, ``seed``, ``steps``, ``cfg_scale``, ``scheduler`` (diffusers scheduler
  names such as ``euler_a``, ``dpmpp_2m_k``: ``_k`` means Karras sigmas), ``width``,
  ``height``, ``strength`` (img2img), and ``model``: ``{"model_name", "base_model", ...}``
  in 3.x, ``{"key", "hash", "name", "base", "type"}`` from 4.0.
- 2.x: ``sd-metadata``, JSON after lstein/stable-diffusion discussion #392
  (``ldm/invoke/args.py``, ``metadata_dumps``): top level ``model_weights`` or ``model_id``,
  ``model_hash``, ``app_version``; the picture under ``image`` (a grid: the first of ``images``)
  with ``prompt`` as ``[{"prompt", "weight"}]``, ``seed``, ``steps``, ``cfg_scale``,
  ``sampler`` (``k_lms``...), ``width``, ``height``, ``strength`` for img2img.
- Older: ``Dream``, the command line: ``"a prompt [negative]" -s 50 -S 42 -W 512 -H 512
  -C 7.5 -A k_lms`` (``dream_prompt_str``). The negative prompt of 2.x is the text in square
  brackets (``invokeai/backend/prompting/conditioning.py``: ``\\[(.*?)\\]``).
"""

from __future__ import annotations

import re

from engine.gallery.formats.values import (
    as_float,
    as_int,
    as_text,
    bounded,
    load_json_object,
    settings_of,
)
from engine.gallery.recovered import RecoveredParameters

TOOL = "InvokeAI"
_BRACKETS_RE = re.compile(r"\[(.*?)\]", re.DOTALL)
_V3_FIELDS = ("positive_prompt", "negative_prompt", "seed", "steps", "cfg_scale", "scheduler")
_DREAM_SWITCHES = {
    "-s": "steps",
    "--steps": "steps",
    "-S": "seed",
    "--seed": "seed",
    "-W": "width",
    "--width": "width",
    "-H": "height",
    "--height": "height",
    "-C": "cfg_scale",
    "--cfg_scale": "cfg_scale",
    "-A": "sampler",
    "--sampler": "sampler",
    "-f": "strength",
    "--strength": "strength",
}


def read_invokeai_v3(text: str) -> RecoveredParameters | None:
    data = load_json_object(text)
    if data is None:
        return None
    model = data.get("model")
    model_name = model_hash = None
    if isinstance(model, dict):
        model_name = as_text(model.get("name", model.get("model_name")))
        model_hash = as_text(model.get("hash"))
    elif isinstance(model, str):
        model_name = model
    return RecoveredParameters(
        tool=TOOL,
        prompt=as_text(data.get("positive_prompt")),
        negative_prompt=as_text(data.get("negative_prompt")),
        seed=as_int(data.get("seed")),
        steps=as_int(data.get("steps")),
        cfg_scale=as_float(data.get("cfg_scale")),
        sampler=as_text(data.get("scheduler")),
        schedule=_schedule_of(as_text(data.get("scheduler"))),
        width=as_int(data.get("width")),
        height=as_int(data.get("height")),
        model=model_name,
        model_hash=model_hash,
        strength=as_float(data.get("strength")),
        settings=settings_of(data, skip=_V3_FIELDS + ("width", "height", "strength")),
        text=bounded(text),
    )


def read_invokeai_v2(text: str, dream: str | None) -> RecoveredParameters | None:
    data = load_json_object(text)
    if data is None:
        return read_dream(dream) if dream else None
    image = data.get("image")
    notes: tuple[str, ...] = ()
    if not isinstance(image, dict):
        images = data.get("images")
        first = images[0] if isinstance(images, list) and images else None
        image = first if isinstance(first, dict) else {}
        if first is not None:
            notes = ("A grid of several pictures: the first one's parameters are shown.",)
    prompt, negative = _split_negative(_v2_prompt(image.get("prompt")))
    sampler = as_text(image.get("sampler"))
    return RecoveredParameters(
        tool=TOOL,
        prompt=prompt,
        negative_prompt=negative,
        seed=as_int(image.get("seed")),
        steps=as_int(image.get("steps")),
        cfg_scale=as_float(image.get("cfg_scale")),
        sampler=sampler,
        width=as_int(image.get("width")),
        height=as_int(image.get("height")),
        model=as_text(data.get("model_weights", data.get("model_id"))),
        model_hash=as_text(data.get("model_hash")),
        strength=as_float(image.get("strength")),
        settings=settings_of(image, skip=("prompt", "seed", "steps", "cfg_scale", "sampler")),
        notes=notes,
        text=bounded(text),
    )


def read_dream(text: str) -> RecoveredParameters | None:
    """The ``Dream`` command line: the quoted prompt, then switches."""
    stripped = text.strip()
    if not stripped.startswith('"'):
        return None
    end = stripped.rfind('"')
    if end <= 0:
        return None
    prompt, negative = _split_negative(stripped[1:end])
    values = _switches(stripped[end + 1 :])
    sampler = values.get("sampler")
    return RecoveredParameters(
        tool=TOOL,
        prompt=prompt,
        negative_prompt=negative,
        seed=as_int(values.get("seed")),
        steps=as_int(values.get("steps")),
        cfg_scale=as_float(values.get("cfg_scale")),
        sampler=sampler,
        width=as_int(values.get("width")),
        height=as_int(values.get("height")),
        strength=as_float(values.get("strength")),
        settings=values,
        text=bounded(text),
    )


def _switches(text: str) -> dict[str, str]:
    """``-s 50 -S42 --seed 7`` into ``{"steps": "50", "seed": "7"}`` (later ones win)."""
    tokens = text.split()[:200]
    values: dict[str, str] = {}
    for index, token in enumerate(tokens):
        flag, value = token, None
        if not token.startswith("--") and len(token) > 2 and token[:2] in _DREAM_SWITCHES:
            flag, value = token[:2], token[2:]  # "-s50"
        name = _DREAM_SWITCHES.get(flag)
        if name is None:
            continue
        if value is None and index + 1 < len(tokens):
            value = tokens[index + 1]
        if value is not None:
            values[name] = value
    return values


def _v2_prompt(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        return None
    parts = [as_text(p.get("prompt")) for p in value[:100] if isinstance(p, dict)]
    texts = [p for p in parts if p is not None]
    return ", ".join(texts) if texts else None


def _split_negative(prompt: str | None) -> tuple[str | None, str | None]:
    """InvokeAI 2.x wrote the negative prompt inside the prompt, in square brackets."""
    if prompt is None:
        return None, None
    negatives = _BRACKETS_RE.findall(prompt)
    positive = _BRACKETS_RE.sub("", prompt).strip()
    return positive, " ".join(n.strip() for n in negatives)


def _schedule_of(scheduler: str | None) -> str | None:
    """InvokeAI 3+'s scheduler names carry the schedule: ``_k`` is Karras, the rest the
    model's own spacing (what A1111 and we call "normal"). 2.x files say nothing of it."""
    if scheduler is None:
        return None
    if scheduler == "lcm":  # diffusers' LCMScheduler: LCM's own timesteps
        return "lcm"
    return "karras" if scheduler.endswith("_k") else "normal"
