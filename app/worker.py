"""The one worker that owns the backend. It lives in its own QThread and reads a queue.

Everything slow (creating the engine, which imports torch; loading a model; sampling; encoding
and writing PNGs) happens here. Results go back through signals; receivers live on the GUI
thread, so Qt queues them. Nothing here touches a widget or makes a QPixmap.
"""

from __future__ import annotations

import queue
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from app.jobs import FinishedImage, Job, LoadModel, PreviewThrottle, Stop
from app.qimages import array_to_qimage
from app.services import Services
from app.signals import emit
from engine import Backend, Cancelled, EngineError, ImageEvent, StepEvent


class Worker(QObject):
    model_progress = Signal(float, str)
    model_loaded = Signal(object)  # ModelInfo
    model_failed = Signal(str, str)  # path, message
    job_started = Signal(int)
    # job id, step, total, elapsed, batch index, batch count, QImage or None
    job_step = Signal(int, int, int, float, int, int, object)
    # job id, FinishedImage: sent as each image is saved, so a job cancelled or failing later
    # keeps the images it already made
    image_ready = Signal(int, object)
    job_notes = Signal(int, object)  # job id, tuple[str, ...]: e.g. how much of a LoRA matched
    job_finished = Signal(int)
    job_failed = Signal(int, str)
    job_cancelled = Signal(int)

    def __init__(self, services: Services, preview_interval: float = 1 / 15) -> None:
        super().__init__()
        self._services = services
        self._preview_interval = preview_interval
        self._backend: Backend | None = None
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

    def _backend_or_create(self) -> Backend:
        if self._backend is None:
            self._backend = self._services.backend_factory()
        return self._backend

    def _load(self, path: str) -> None:
        backend = self._backend_or_create()
        try:
            info = backend.load_model(path, lambda f, m: emit(self.model_progress, f, m))
        except EngineError as exc:
            emit(self.model_failed, path, str(exc))
            return
        emit(self.model_loaded, info)

    def _generate(self, job: Job) -> None:
        if job.cancel.is_set():  # cleared from the queue before it started
            emit(self.job_cancelled, job.id)
            return
        backend = self._backend_or_create()
        emit(self.job_started, job.id)
        throttle = PreviewThrottle(self._preview_interval)
        try:
            result = backend.generate(
                job.request,
                on_step=lambda event: self._on_step(event, throttle),
                on_image=lambda event: self._on_image(job, event),
                cancel=job.cancel,
                job_id=job.id,
            )
        except Cancelled:
            emit(self.job_cancelled, job.id)
            return
        except EngineError as exc:
            emit(self.job_failed, job.id, str(exc))
            return
        if result.notes:
            emit(self.job_notes, job.id, tuple(result.notes))
        emit(self.job_finished, job.id)

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

    def _on_image(self, job: Job, event: ImageEvent) -> None:
        generated = event.image
        path, error = self._save(job.output_dir, event)
        finished = FinishedImage(
            generated.image, generated.seed, generated.parameters, path, error, event.index
        )
        emit(self.image_ready, job.id, finished)

    def _save(self, folder: Path, event: ImageEvent) -> tuple[Path | None, str]:
        """(path, "") when saved; (None, why) when not: the image is kept in memory then."""
        try:
            return self._services.save_image(folder, event.image), ""
        except EngineError as exc:
            return None, str(exc)
        except OSError as exc:
            return None, f"The image could not be saved in {folder}: {exc.strerror or exc}"
