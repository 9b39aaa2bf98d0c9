"""Small real picture files for the gallery index tests: our own PNGs (engine.output) carrying
A1111 parameters, read back by the real reader (engine.gallery.read)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.output import save_png_to
from engine.parameters import format_parameters


def save_picture(
    path: Path,
    prompt: str = "a red car",
    negative: str = "",
    *,
    seed: int | None = 1,
    model: str | None = "v1-5-pruned-emaonly",
    sampler: str = "Euler a",
    size: tuple[int, int] | None = (512, 512),
    mtime: float | None = None,
    pixels: tuple[int, int] = (8, 8),
) -> Path:
    """A tiny PNG at ``path`` whose parameters say ``size`` (None: no Size setting, so the
    index must take the pixel size from the image header)."""
    settings: dict[str, object] = {"Steps": 20, "Sampler": sampler, "CFG scale": 7}
    settings["Seed"] = seed
    if size is not None:
        settings["Size"] = f"{size[0]}x{size[1]}"
    settings["Model"] = model
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((pixels[1], pixels[0], 3), (seed or 0) % 251, np.uint8)
    save_png_to(path, image, format_parameters(prompt, negative, settings))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path
