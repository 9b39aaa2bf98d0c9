"""The A1111 ``parameters`` text (the format: ``engine.parameters``), whichever tool wrote it.

AUTOMATIC1111's web UI writes it (``modules/processing.py`` ``create_infotext``; stored by
``modules/images.py``), and so do its forks (Forge), Fooocus with its "a1111" scheme, many
ComfyUI save nodes, and Latentdesk itself. The tool is told by the ``Version`` setting.
"""

from __future__ import annotations

import re

from engine.gallery.formats.values import as_float, as_int, bounded
from engine.gallery.recovered import RecoveredParameters
from engine.parameters import LEGACY_VERSION, parse_parameters

_SIZE_RE = re.compile(r"\s*(\d{1,6})\s*x\s*(\d{1,6})\s*")


def read_a1111(text: str, tool: str | None = None) -> RecoveredParameters | None:
    """The fields of an A1111 text; None when it is blank. ``tool`` overrides the guess."""
    if not text.strip():
        return None
    parsed = parse_parameters(text)
    settings = dict(parsed.settings)
    sampler = settings.get("Sampler")
    width, height = _size(settings.get("Size"))
    return RecoveredParameters(
        tool=tool or tool_of(settings),
        prompt=parsed.prompt,
        negative_prompt=parsed.negative_prompt if settings or parsed.negative_prompt else None,
        seed=as_int(settings.get("Seed")),
        steps=as_int(settings.get("Steps")),
        cfg_scale=as_float(settings.get("CFG scale")),
        sampler=sampler,
        schedule=settings.get("Schedule type") or _karras_in_name(sampler),
        width=width,
        height=height,
        model=settings.get("Model"),
        model_hash=settings.get("Model hash"),
        strength=as_float(settings.get("Denoising strength")),
        settings=settings,
        text=bounded(text),
    )


def tool_of(settings: dict[str, str]) -> str:
    version = settings.get("Version", "").strip()
    if version.casefold().startswith(LEGACY_VERSION):
        return "Latentdesk"
    if version.casefold().startswith("fooocus"):
        return "Fooocus"
    return "A1111"


def _size(text: str | None) -> tuple[int | None, int | None]:
    match = _SIZE_RE.fullmatch(text or "")
    return (int(match.group(1)), int(match.group(2))) if match else (None, None)


def _karras_in_name(sampler: str | None) -> str | None:
    # Before A1111 1.9 wrote "Schedule type", Karras was part of the sampler's name.
    if sampler and sampler.strip().casefold().endswith(" karras"):
        return "Karras"
    return None
