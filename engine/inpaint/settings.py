"""Inpainting settings in the A1111 ``parameters`` text, both ways (torch-free).

Keys and values as A1111 writes them (``modules/processing.py`` and ``modules/img2img.py``):
"Mask blur: 4" on every inpainted picture; "Masked content: fill" / "latent noise" /
"latent nothing" (nothing for "original", its default); "Inpaint area: Only masked" with
"Masked area padding: 32" (nothing for the whole picture, its default).
"""

from __future__ import annotations

from engine.api import INPAINT_AREAS, MASKED_CONTENT, GenerationRequest

MASK_BLUR_KEY = "Mask blur"
MASKED_CONTENT_KEY = "Masked content"
INPAINT_AREA_KEY = "Inpaint area"
PADDING_KEY = "Masked area padding"
KEYS = (MASK_BLUR_KEY, MASKED_CONTENT_KEY, INPAINT_AREA_KEY, PADDING_KEY)

MAX_MASK_BLUR = 64  # A1111's slider ends there
MAX_PADDING = 256  # likewise

_CONTENT_NAMES = ("original", "fill", "latent noise", "latent nothing")
_CONTENT_DISPLAY = dict(zip(MASKED_CONTENT, _CONTENT_NAMES, strict=True))
_AREA_DISPLAY = dict(zip(INPAINT_AREAS, ("Whole picture", "Only masked"), strict=True))


def inpaint_settings(request: GenerationRequest) -> dict[str, object]:
    """The keys an inpainted picture's metadata gets, in A1111's order."""
    settings: dict[str, object] = {MASK_BLUR_KEY: request.mask_blur}
    if request.masked_content != "original":
        settings[MASKED_CONTENT_KEY] = _CONTENT_DISPLAY[request.masked_content]
    if request.inpaint_area == "masked":
        settings[INPAINT_AREA_KEY] = _AREA_DISPLAY["masked"]
        settings[PADDING_KEY] = request.inpaint_padding
    return settings


def inpaint_fields(settings: dict[str, str]) -> dict[str, object]:
    """GenerationRequest fields from a parameters text's settings. Only for inpainted pictures
    (a "Mask blur" key); there, a missing key means A1111's default. Unknown values are left
    out."""
    if MASK_BLUR_KEY not in settings:
        return {}
    fields: dict[str, object] = {}
    blur = _int(settings[MASK_BLUR_KEY], MAX_MASK_BLUR)
    if blur is not None:
        fields["mask_blur"] = blur
    content = _lookup(_CONTENT_DISPLAY, settings.get(MASKED_CONTENT_KEY, "original"))
    if content is not None:
        fields["masked_content"] = content
    area = _lookup(_AREA_DISPLAY, settings.get(INPAINT_AREA_KEY, "Whole picture"))
    if area is not None:
        fields["inpaint_area"] = area
    padding = _int(settings.get(PADDING_KEY, ""), MAX_PADDING)
    if padding is not None:
        fields["inpaint_padding"] = padding
    return fields


def _lookup(display: dict[str, str], text: str) -> str | None:
    wanted = text.strip().casefold()
    return next((key for key, name in display.items() if name.casefold() == wanted), None)


def _int(text: str, high: int) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and int(text) <= high else None
