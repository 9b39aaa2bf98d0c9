"""``latentdesk-cli img2img --mask MASK.png`` and its options (A1111's names and defaults)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from engine.api import INPAINT_AREAS, MASKED_CONTENT, GenerationRequest
from engine.inpaint.settings import MAX_MASK_BLUR, MAX_PADDING

_D = GenerationRequest("")


def add_inpaint_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mask",
        type=Path,
        help="inpaint: repaint only where this picture is white (or opaque, if it has "
        "transparency); a mask of another size is scaled to the image",
    )
    p.add_argument(
        "--mask-blur",
        type=int,
        default=_D.mask_blur,
        help=f"feather the mask's edge by this many pixels, 0 to {MAX_MASK_BLUR} "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--masked-content",
        choices=MASKED_CONTENT,
        default=_D.masked_content,
        help="what the masked area starts from (default: %(default)s)",
    )
    p.add_argument(
        "--inpaint-area",
        choices=INPAINT_AREAS,
        default=_D.inpaint_area,
        help="whole: the whole picture at --W x --H; masked: only the masked area (plus "
        "--padding), scaled to --W x --H, then pasted back (default: %(default)s)",
    )
    p.add_argument(
        "--padding",
        type=int,
        default=_D.inpaint_padding,
        help=f"pixels around the mask for --inpaint-area masked, 0 to {MAX_PADDING} "
        "(default: %(default)s)",
    )


def with_mask_args(
    args: argparse.Namespace, requests: list[GenerationRequest]
) -> list[GenerationRequest]:
    """The requests with the mask file read (refused like an init image when it is not a
    picture or too large) and the inpainting options set. Without --mask: unchanged."""
    if getattr(args, "mask", None) is None:
        return requests
    from engine.inpaint.mask_file import load_mask

    mask = load_mask(args.mask)
    options = dict(
        mask=mask,
        mask_blur=args.mask_blur,
        masked_content=args.masked_content,
        inpaint_area=args.inpaint_area,
        inpaint_padding=args.padding,
    )
    return [replace(request, **options) for request in requests]  # type: ignore[arg-type]
