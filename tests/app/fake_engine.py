"""A controllable stand-in for ``engine.Engine`` with the same methods, for timing-bound tests.

It sleeps a little per step and sends coloured previews, so tests can cancel mid-run, queue
jobs and measure the GUI's responsiveness without the cost of a real model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine import (
    Cancelled,
    GeneratedImage,
    GenerationRequest,
    GenerationResult,
    ModelInfo,
    StepEvent,
)
from engine.errors import NoModelError, NotACheckpointError


class FakeEngine:
    def __init__(self, step_seconds: float = 0.02) -> None:
        self.step_seconds = step_seconds
        self.model_info: ModelInfo | None = None
        self.started: list[int] = []  # job ids, in the order they began
        self.thread_names: list[str] = []

    def load_model(
        self, path: str, on_progress: Callable[[float, str], None] = lambda f, m: None
    ) -> ModelInfo:
        self.thread_names.append(threading.current_thread().name)
        on_progress(0.5, "Reading the fake checkpoint…")
        if not Path(path).exists() or Path(path).read_bytes()[:4] != b"FAKE":
            raise NotACheckpointError(f"{Path(path).name} is not a checkpoint.")
        self.model_info = ModelInfo(Path(path).stem, str(path), "sd1", False, "cpu", "float32", 0.0)
        return self.model_info

    def generate(
        self,
        request: GenerationRequest,
        on_step: Callable[[StepEvent], None] = lambda e: None,
        cancel: threading.Event | None = None,
        job_id: int = 0,
    ) -> GenerationResult:
        if self.model_info is None:
            raise NoModelError("Open a model first.")
        self.started.append(job_id)
        seed = 1234 if request.seed is None else request.seed
        start = time.monotonic()
        for step in range(1, request.steps + 1):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            time.sleep(self.step_seconds)
            shade = int(255 * step / request.steps)
            preview = np.full((request.height // 8, request.width // 8, 3), shade, np.uint8)
            on_step(StepEvent(job_id, step, request.steps, time.monotonic() - start, 0, 1, preview))
        image = np.zeros((request.height, request.width, 3), np.uint8)
        image[..., 0] = seed % 256
        params = f"{request.prompt}\nSteps: {request.steps}, Seed: {seed}"
        return GenerationResult(job_id, request, (GeneratedImage(image, seed, params),), {})


def write_fake_checkpoint(path: Path) -> Path:
    path.write_bytes(b"FAKE checkpoint")
    return path


class MemorySaver:
    """Records saves instead of writing PNGs (the real writer is engine.output's)."""

    def __init__(self, fail: bool = False) -> None:
        self.saved: list[tuple[Path, str]] = []
        self.fail = fail

    def __call__(self, folder: Path, image: np.ndarray, parameters: str) -> Path:
        if self.fail:
            from engine.errors import EngineError

            raise EngineError(f"The folder {folder} cannot be written.")
        path = folder / f"{len(self.saved):05d}.png"
        self.saved.append((path, parameters))
        return path
