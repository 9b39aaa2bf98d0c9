"""A controllable stand-in for ``engine.Engine``: a full ``engine.Backend``, for timing-bound tests.

It sleeps a little per step and sends coloured previews, so tests can cancel mid-run, queue
jobs and measure the GUI's responsiveness without the cost of a real model. Like the engine, it
runs ``batch_count`` batches of ``batch_size`` images (image i has seed + i), hands out each
image through ``on_image`` as it is finished, and stops within one step when cancelled.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

from engine import (
    Backend,
    Cancelled,
    GeneratedImage,
    GenerationRequest,
    GenerationResult,
    ImageCallback,
    ImageEvent,
    ModelInfo,
    ModelRef,
    ProgressCallback,
    StepCallback,
    StepEvent,
)
from engine.api import MAX_SEED
from engine.errors import NoModelError, NotACheckpointError

MAGIC = b"FAKE"


class FakeEngine:
    def __init__(self, step_seconds: float = 0.02, model_folder: Path | None = None) -> None:
        self.step_seconds = step_seconds
        self.model_folder = model_folder
        self._info: ModelInfo | None = None
        self.started: list[int] = []  # job ids, in the order they began
        self.thread_names: list[str] = []

    @property
    def model_info(self) -> ModelInfo | None:
        return self._info

    def list_models(self) -> list[ModelRef]:
        found = []
        if self.model_folder is not None:
            found = [p for p in self.model_folder.glob("*.safetensors") if _is_fake(p)]
        if self._info is not None:
            found.append(Path(self._info.path))
        refs = {str(p): ModelRef(str(p), p.stem, str(p)) for p in found}
        return sorted(refs.values(), key=lambda r: (r.name.casefold(), r.id))

    def load_model(
        self, model: str | os.PathLike[str], on_progress: ProgressCallback | None = None
    ) -> ModelInfo:
        self.thread_names.append(threading.current_thread().name)
        if on_progress is not None:
            on_progress(0.5, "Reading the fake checkpoint…")
        path = Path(model)
        if not _is_fake(path):
            raise NotACheckpointError(f"{path.name} is not a checkpoint.")
        self._info = ModelInfo(
            path.stem, str(path), "sd1", False, "cpu", "float32", 0.0, native_size=512
        )
        return self._info

    def generate(
        self,
        request: GenerationRequest,
        *,
        on_step: StepCallback | None = None,
        on_image: ImageCallback | None = None,
        cancel: threading.Event | None = None,
        job_id: int = 0,
    ) -> GenerationResult:
        if self._info is None:
            raise NoModelError("Open a model first.")
        self.started.append(job_id)
        cancel = cancel or threading.Event()
        first = 1234 if request.seed is None else request.seed
        total = request.batch_size * request.batch_count
        seeds = [(first + i) % (MAX_SEED + 1) for i in range(total)]
        start = time.monotonic()
        images: list[GeneratedImage] = []
        for batch in range(request.batch_count):
            for step in range(1, request.steps + 1):
                _check(cancel)
                time.sleep(self.step_seconds)
                if on_step is not None:
                    on_step(_step_event(request, job_id, step, batch, time.monotonic() - start))
            _check(cancel)  # as the engine: a cancel during the last step skips the decode
            for seed in seeds[batch * request.batch_size : (batch + 1) * request.batch_size]:
                images.append(_image(request, seed))
                if on_image is not None:
                    on_image(ImageEvent(job_id, len(images) - 1, total, images[-1]))
        return GenerationResult(job_id, request, tuple(images), {})


def _check(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise Cancelled()


def _step_event(
    request: GenerationRequest, job_id: int, step: int, batch: int, elapsed: float
) -> StepEvent:
    shade = int(255 * step / request.steps)  # the preview brightens as the steps go by
    preview = np.full((request.height // 8, request.width // 8, 3), shade, np.uint8)
    return StepEvent(job_id, step, request.steps, elapsed, batch, request.batch_count, preview)


def _image(request: GenerationRequest, seed: int) -> GeneratedImage:
    pixels = np.zeros((request.height, request.width, 3), np.uint8)
    pixels[..., 0] = seed % 256
    parameters = f"{request.prompt}\nSteps: {request.steps}, Seed: {seed}"
    return GeneratedImage(pixels, seed, parameters)


def _is_fake(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def write_fake_checkpoint(path: Path) -> Path:
    path.write_bytes(MAGIC + b" checkpoint")
    return path


class MemorySaver:
    """Records saves instead of writing PNGs (the real writer is engine.output's)."""

    def __init__(self, fail: bool = False) -> None:
        self.saved: list[tuple[Path, str]] = []
        self.fail = fail

    def __call__(self, folder: Path, image: GeneratedImage) -> Path:
        if self.fail:
            from engine.errors import EngineError

            raise EngineError(f"The folder {folder} cannot be written.")
        path = folder / f"{len(self.saved):05d}-{image.seed}.png"
        self.saved.append((path, image.parameters))
        return path


class PauseAtBatch:
    """Wraps a backend and holds a job at the first step of batch ``batch`` (0-based) until the
    job is cancelled: a test can then cancel "during batch 3" at a known point, however fast
    or slow the machine. ``reached`` is set when the hold begins."""

    def __init__(self, inner: Backend, batch: int, reached: threading.Event) -> None:
        self.inner = inner
        self.batch = batch
        self.reached = reached

    @property
    def model_info(self) -> ModelInfo | None:
        return self.inner.model_info

    def list_models(self) -> list[ModelRef]:
        return self.inner.list_models()

    def load_model(
        self, model: str | os.PathLike[str], on_progress: ProgressCallback | None = None
    ) -> ModelInfo:
        return self.inner.load_model(model, on_progress)

    def generate(
        self,
        request: GenerationRequest,
        *,
        on_step: StepCallback | None = None,
        on_image: ImageCallback | None = None,
        cancel: threading.Event | None = None,
        job_id: int = 0,
    ) -> GenerationResult:
        cancel = cancel or threading.Event()

        def step(event: StepEvent) -> None:
            if on_step is not None:
                on_step(event)
            if event.batch_index == self.batch and event.step == 1:
                self.reached.set()
                cancel.wait(timeout=60)  # the backend checks it again at the next step

        return self.inner.generate(
            request, on_step=step, on_image=on_image, cancel=cancel, job_id=job_id
        )
