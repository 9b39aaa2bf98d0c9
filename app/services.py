"""What the app needs from outside itself: something that makes pictures, and a way to keep them.

One typed seam, passed as one parameter from the window to the controller to the worker. The
real app uses the defaults; tests pass a fake backend or a saver that records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine import Backend, GeneratedImage
from engine.output import save_png as write_png

# Writes one finished image into a folder; returns its path. Raises EngineError or OSError.
Saver = Callable[[Path, GeneratedImage], Path]


def local_engine() -> Backend:
    """The local engine. Called on the worker thread: creating it imports torch."""
    from engine import Engine

    return Engine()


def save_png(folder: Path, image: GeneratedImage) -> Path:
    """A time-sorted PNG named after the image's seed, carrying its parameters."""
    return write_png(folder, image.image, image.parameters, stem=image.seed)


@dataclass(frozen=True)
class Services:
    backend_factory: Callable[[], Backend] = local_engine
    save_image: Saver = save_png
