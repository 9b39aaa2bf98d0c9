"""`Engine`: the one object the app's worker thread and the CLI talk to."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import torch

from engine.api import GenerationRequest, GenerationResult, ModelInfo
from engine.devices import dtype_name, pick_device, pick_dtype
from engine.errors import NoModelError, OutOfMemoryError
from engine.loading.build import ModelBundle, Progress, load_bundle
from engine.model_hash import model_hash
from engine.pipeline import ModelLabel, StepCallback, generate
from engine.validate import validate_request


class Engine:
    """Loads one checkpoint at a time and runs generations on it.

    Not thread-safe: one thread (the app's worker, or the CLI's main thread) owns it. Cancel a
    running generation from any thread by setting the ``cancel`` event passed to ``generate``.
    """

    def __init__(self, device: str | None = None, precision: str = "auto"):
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device, precision)
        self._bundle: ModelBundle | None = None
        self._info: ModelInfo | None = None
        self._label: ModelLabel | None = None

    @property
    def model_info(self) -> ModelInfo | None:
        return self._info

    def load_model(self, path: str | Path, on_progress: Progress | None = None) -> ModelInfo:
        """Replace the current model. On error the previous model stays loaded."""
        path = Path(path).expanduser()
        start = time.perf_counter()
        bundle = _guard_oom(lambda: load_bundle(path, self.device, self.dtype, on_progress))
        self.unload()
        self._bundle = bundle
        name = path.name if path.is_dir() else path.stem
        self._label = ModelLabel(name, None)
        self._info = ModelInfo(
            name=name,
            path=str(path),
            family=bundle.family,
            inpainting=bundle.inpainting,
            device=str(self.device),
            dtype=dtype_name(self.dtype),
            load_seconds=time.perf_counter() - start,
        )
        return self._info

    def unload(self) -> None:
        self._bundle = self._info = self._label = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def generate(
        self,
        request: GenerationRequest,
        on_step: StepCallback | None = None,
        cancel: threading.Event | None = None,
        job_id: int = 0,
    ) -> GenerationResult:
        if self._bundle is None or self._info is None or self._label is None:
            raise NoModelError("No model is loaded. Open a Stable Diffusion 1.x checkpoint first.")
        validate_request(request)  # before hashing: a bad value must not cost seconds of work
        if self._label.hash is None and not Path(self._info.path).is_dir():
            # Hashing 2 GB takes seconds: done once, on first use, not while loading.
            self._label = ModelLabel(self._label.name, model_hash(Path(self._info.path)))
        bundle, label = self._bundle, self._label
        return _guard_oom(
            lambda: generate(bundle, request, label, on_step=on_step, cancel=cancel, job_id=job_id),
            request,
        )


# How allocators word it: CUDA/MPS "out of memory"; torch's CPU allocator "can't allocate
# memory" (Linux, macOS) or "not enough memory" (Windows), as a plain RuntimeError.
_OOM_WORDS = ("out of memory", "can't allocate memory", "not enough memory")


def _is_oom(e: BaseException) -> bool:
    if isinstance(e, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(e).lower()
    return isinstance(e, RuntimeError) and any(words in text for words in _OOM_WORDS)


def _guard_oom(work, request: GenerationRequest | None = None):
    """Turn an out-of-memory into a message with a size that would fit, and free what we can so
    the engine stays usable for the next job."""
    try:
        return work()
    except Exception as e:
        if not _is_oom(e):
            raise
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    raise OutOfMemoryError(_oom_advice(request)) from None


def _oom_advice(request: GenerationRequest | None) -> str:
    if request is None:
        return (
            "Out of memory while loading the model. Close other programs that use the GPU or "
            "memory, or choose --precision autocast / a smaller model."
        )
    if request.batch_size > 1:
        return (
            f"Out of memory at batch size {request.batch_size}. Try batch size "
            f"{max(1, request.batch_size // 2)} (and a larger batch count instead)."
        )
    w, h = _smaller_size(request.width, request.height)
    if (w, h) == (request.width, request.height):
        # Already the smallest size: only more free memory or a lighter precision can help.
        return (
            f"Out of memory even at {w}x{h}, the smallest size. Close other programs that use "
            "the GPU or memory, or choose half precision (--precision autocast)."
        )
    return (
        f"Out of memory at {request.width}x{request.height}. Try {w}x{h}, or close other "
        "programs that use the GPU or memory."
    )


def _smaller_size(width: int, height: int) -> tuple[int, int]:
    """About half the pixels, same aspect, multiples of 8, at least 64."""
    scale = 0.5**0.5
    return (max(64, int(width * scale) // 8 * 8), max(64, int(height * scale) // 8 * 8))
