"""What travels to the worker (jobs and commands) and the small rules about progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine import GenerationRequest
from engine.units import human_duration


@dataclass
class Job:
    id: int
    request: GenerationRequest
    output_dir: Path
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class LoadModel:
    path: str


@dataclass(frozen=True)
class Stop:
    """Ends the worker's loop."""


@dataclass
class FinishedImage:
    """One generated image, saved or not. ``array`` is kept so an unsaved image is never lost."""

    array: np.ndarray  # (H, W, 3) uint8
    seed: int
    parameters: str
    path: Path | None  # None when saving failed
    save_error: str = ""
    index: int = 0  # position in its job: image i has the job's seed + i


class PreviewThrottle:
    """Lets a step event through at most every ``interval`` seconds, and always the last one.

    Steps of a tiny model take milliseconds; sending each one would flood the GUI's event queue.
    """

    def __init__(self, interval: float = 1 / 15, clock: Callable[[], float] = time.monotonic):
        self._interval = interval
        self._clock = clock
        self._last = -float("inf")

    def ready(self, final: bool = False) -> bool:
        now = self._clock()
        if final or now - self._last >= self._interval:
            self._last = now
            return True
        return False


def progress_text(
    step: int, total: int, elapsed: float, batch_index: int = 0, batch_count: int = 1
) -> tuple[str, float]:
    """("Step 12/25 · 3.1 it/s · 4 s left", fraction of the whole job done)."""
    done = batch_index * total + step
    whole = max(1, batch_count * total)
    text = f"Step {step}/{total}"
    if batch_count > 1:
        text = f"Batch {batch_index + 1}/{batch_count} · " + text
    if elapsed > 0 and done > 0:
        rate = done / elapsed
        left = (whole - done) / rate
        text += f" · {rate:.1f} it/s · {human_duration(left)} left"
    return text, done / whole
