"""The GUI thread's side of the worker: keeps track of jobs and turns worker signals into state.

The worker runs jobs in the order they were sent. This side knows which job the person is
waiting for (``current``) and which are queued; events of any other job are stale and dropped.
Cancel and "clear queue" only set the jobs' cancel events, so the GUI never waits.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThread, Signal
from PySide6.QtGui import QImage

from app.jobs import FinishedImage, Job, LoadModel, Stop, progress_text
from app.services import Services
from app.signals import emit
from app.viewmodel import JobsState, ModelState
from app.worker import Worker
from engine import GenerationRequest, ModelInfo


class EngineController(QObject):
    preview_ready = Signal(int, QImage)  # job id, preview of the current job
    # job id, FinishedImage: each image as soon as it is saved, of any job, even one cancelled
    # since: it is on disk (or kept in memory) and must not be lost
    image_ready = Signal(int, object)
    job_done = Signal(int, str)  # job id, "finished" | "cancelled" | "failed"
    notes = Signal(int, object)  # job id, tuple[str, ...]: what a finished job reports
    error = Signal(str)  # a message for the person
    model_loaded = Signal(object)  # ModelInfo

    def __init__(
        self,
        jobs: JobsState,
        model: ModelState,
        services: Services | None = None,
        preview_interval: float = 1 / 15,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.model = model
        self.current: Job | None = None
        self.pending: list[Job] = []
        self._ids = itertools.count(1)
        self._unsaved_reported: int | None = None  # the job whose save failure was shown
        self._thread = QThread()
        self._thread.setObjectName("latentdesk-worker")
        self._worker = Worker(services or Services(), preview_interval)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._connect_worker()

    def _connect_worker(self) -> None:
        queued = Qt.ConnectionType.QueuedConnection
        w = self._worker
        w.model_progress.connect(self._on_model_progress, queued)
        w.model_loaded.connect(self._on_model_loaded, queued)
        w.model_failed.connect(self._on_model_failed, queued)
        w.job_step.connect(self._on_step, queued)
        w.image_ready.connect(self._on_image, queued)
        w.job_notes.connect(self._on_notes, queued)
        w.job_finished.connect(self._on_finished, queued)
        w.job_failed.connect(self._on_failed, queued)
        w.job_cancelled.connect(self._on_cancelled, queued)

    def start(self) -> None:
        self._thread.start()

    def shutdown(self) -> None:
        """Cancel everything and stop the worker thread (waits for the step in progress)."""
        self.clear_queue()
        self.cancel()
        self._worker.submit(Stop())
        self._thread.quit()
        self._thread.wait()

    # -- requests from the GUI -------------------------------------------------------------

    def load_model(self, path: str) -> None:
        self.model.loading = True
        self.model.fraction = 0.0
        self.model.message = f"Loading {Path(path).name}…"
        self._worker.submit(LoadModel(path))

    def generate(self, request: GenerationRequest, output_dir: Path) -> int:
        job = Job(next(self._ids), request, Path(output_dir))
        if self.current is None:
            self._make_current(job)
        else:
            self.pending.append(job)
            self.jobs.queued = len(self.pending)
        self._worker.submit(job)
        return job.id

    def cancel(self) -> None:
        """Stop the current job; the UI is idle (or on the next queued job) at once."""
        if self.current is not None:
            self.current.cancel.set()
            self._advance()

    def clear_queue(self) -> None:
        for job in self.pending:
            job.cancel.set()
        self.pending.clear()
        self.jobs.queued = 0

    # -- worker events ----------------------------------------------------------------------

    def is_current(self, job_id: int) -> bool:
        return self.current is not None and self.current.id == job_id

    def _make_current(self, job: Job | None) -> None:
        self.current = job
        self.jobs.running = job is not None
        self.jobs.fraction = 0.0
        self.jobs.progress = "Starting…" if job is not None else ""

    def _advance(self) -> None:
        self._make_current(self.pending.pop(0) if self.pending else None)
        self.jobs.queued = len(self.pending)

    def _on_step(
        self,
        job_id: int,
        step: int,
        total: int,
        elapsed: float,
        batch_index: int,
        batch_count: int,
        image: QImage | None,
    ) -> None:
        if not self.is_current(job_id):
            return  # a cancelled job's last steps: stale
        text, fraction = progress_text(step, total, elapsed, batch_index, batch_count)
        self.jobs.progress = text
        self.jobs.fraction = fraction
        if image is not None:
            emit(self.preview_ready, job_id, image)

    def _on_image(self, job_id: int, image: FinishedImage) -> None:
        # Not only the current job's: a cancelled job's finished images are saved, show them.
        if image.index == 0:
            self.jobs.last_seed = image.seed  # the job's seed: "reuse" makes the batch again
        emit(self.image_ready, job_id, image)
        if image.save_error and self._unsaved_reported != job_id:
            self._unsaved_reported = job_id  # one message per job, not one per image
            emit(self.error, image.save_error + "\nThe image is kept in the strip: use “Save as…”.")

    def _on_notes(self, job_id: int, notes: tuple[str, ...]) -> None:
        emit(self.notes, job_id, notes)

    def _on_finished(self, job_id: int) -> None:
        self._done(job_id, "finished")

    def _on_failed(self, job_id: int, message: str) -> None:
        if self.is_current(job_id):
            emit(self.error, message)
        self._done(job_id, "failed")

    def _on_cancelled(self, job_id: int) -> None:
        self._done(job_id, "cancelled")

    def _done(self, job_id: int, how: str) -> None:
        if self.is_current(job_id):
            self._advance()
        emit(self.job_done, job_id, how)

    def _on_model_progress(self, fraction: float, message: str) -> None:
        self.model.fraction = fraction
        self.model.message = message or f"Loading model… {fraction:.0%}"

    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.model.loading = False
        self.model.name = info.name
        self.model.path = info.path
        self.model.device = f"{info.device} · {info.dtype}"
        note = f" · running on CPU: {info.device_note}" if info.device_note else ""
        self.model.message = f"Loaded {info.name} in {info.load_seconds:.1f} s{note}"
        emit(self.model_loaded, info)

    def _on_model_failed(self, path: str, message: str) -> None:
        self.model.loading = False
        self.model.message = "No model loaded" if not self.model.name else self.model.message
        emit(self.error, f"Could not load {Path(path).name}.\n{message}")
