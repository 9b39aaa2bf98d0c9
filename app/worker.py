"""The one worker that owns the engine. It lives in its own QThread and reads a queue.

Everything slow (creating the engine, which imports torch; loading a model; sampling; encoding
and writing PNGs) happens here. Results go back through signals; receivers live on the GUI
thread, so Qt queues them. Nothing here touches a widget or makes a QPixmap.
"""

from __future__ import annotations

import queue
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QImage

from app.jobs import FinishedImage, Job, LoadModel, PreviewThrottle, Stop
from app.signals import emit
from engine import Cancelled, EngineError, GenerationResult, StepEvent

Saver = Callable[[Path, np.ndarray, str], Path]


def default_engine() -> Any:
    from engine import Engine

    return Engine()


def default_saver(folder: Path, image: np.ndarray, parameters: str) -> Path:
    from engine.output import save_png

    return save_png(folder, image, parameters)


def array_to_qimage(array: np.ndarray) -> QImage:
    """An RGB uint8 (H, W, 3) array as a QImage that owns its own pixels."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    h, w, _ = array.shape
    return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class Worker(QObject):
    model_progress = Signal(float, str)
    model_loaded = Signal(object)  # ModelInfo
    model_failed = Signal(str, str)  # path, message
    job_started = Signal(int)
    # job id, step, total, elapsed, batch index, batch count, QImage or None
    job_step = Signal(int, int, int, float, int, int, object)
    job_finished = Signal(int, object)  # job id, list[FinishedImage]
    job_failed = Signal(int, str)
    job_cancelled = Signal(int)

    def __init__(
        self,
        engine_factory: Callable[[], Any] = default_engine,
        saver: Saver = default_saver,
        preview_interval: float = 1 / 15,
    ) -> None:
        super().__init__()
        self._engine_factory = engine_factory
        self._saver = saver
        self._preview_interval = preview_interval
        self._engine: Any = None
        self.commands: queue.Queue[Job | LoadModel | Stop] = queue.Queue()

    def submit(self, command: Job | LoadModel | Stop) -> None:
        """Thread-safe: called from the GUI thread."""
        self.commands.put(command)

    @Slot()
    def run(self) -> None:
        while True:
            command = self.commands.get()
            if isinstance(command, Stop):
                return
            try:
                if isinstance(command, LoadModel):
                    self._load(command.path)
                else:
                    self._generate(command)
            except Exception as exc:  # never let the worker die: the app must stay usable
                traceback.print_exc()
                self._report_crash(command, exc)

    def _report_crash(self, command: Job | LoadModel, exc: Exception) -> None:
        message = f"Something went wrong that Latentdesk did not expect: {exc}"
        if isinstance(command, LoadModel):
            emit(self.model_failed, command.path, message)
        else:
            emit(self.job_failed, command.id, message)

    def _engine_or_create(self) -> Any:
        if self._engine is None:
            self._engine = self._engine_factory()
        return self._engine

    def _load(self, path: str) -> None:
        engine = self._engine_or_create()
        try:
            info = engine.load_model(path, on_progress=lambda f, m: emit(self.model_progress, f, m))
        except EngineError as exc:
            emit(self.model_failed, path, str(exc))
            return
        emit(self.model_loaded, info)

    def _generate(self, job: Job) -> None:
        if job.cancel.is_set():  # cleared from the queue before it started
            emit(self.job_cancelled, job.id)
            return
        engine = self._engine_or_create()
        emit(self.job_started, job.id)
        throttle = PreviewThrottle(self._preview_interval)
        try:
            result = engine.generate(
                job.request,
                on_step=lambda event: self._on_step(event, throttle),
                cancel=job.cancel,
                job_id=job.id,
            )
        except Cancelled:
            emit(self.job_cancelled, job.id)
            return
        except EngineError as exc:
            emit(self.job_failed, job.id, str(exc))
            return
        emit(self.job_finished, job.id, self._save_all(job, result))

    def _on_step(self, event: StepEvent, throttle: PreviewThrottle) -> None:
        final = event.step == event.total and event.batch_index == event.batch_count - 1
        if not throttle.ready(final):
            return
        image = None if event.preview is None else array_to_qimage(event.preview)
        emit(
            self.job_step,
            event.job_id,
            event.step,
            event.total,
            event.elapsed,
            event.batch_index,
            event.batch_count,
            image,
        )

    def _save_all(self, job: Job, result: GenerationResult) -> list[FinishedImage]:
        finished = []
        for generated in result.images:
            path, error = None, ""
            try:
                path = self._saver(job.output_dir, generated.image, generated.parameters)
            except EngineError as exc:
                error = str(exc)
            except OSError as exc:
                error = f"The image could not be saved in {job.output_dir}: {exc.strerror or exc}"
            finished.append(
                FinishedImage(generated.image, generated.seed, generated.parameters, path, error)
            )
        return finished
