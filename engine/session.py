"""`Engine`: the local backend, the one object the app's worker thread and the CLI talk to."""

from __future__ import annotations

import gc
import os
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import torch

from engine.api import (
    GenerationRequest,
    GenerationResult,
    ImageCallback,
    ModelInfo,
    ModelRef,
    ProgressCallback,
    StepCallback,
)
from engine.devices import dtype_name, pick_device, pick_dtype
from engine.errors import NoModelError, OutOfMemoryError
from engine.gpu_check import cpu_fallback_reason
from engine.library import LibraryEntry, ModelLibrary, load_config
from engine.library.hashing import model_hash
from engine.loading.build import ModelBundle, load_bundle
from engine.lora.manager import LoraManager
from engine.pipeline import ModelLabel, generate
from engine.prompts.resources import PromptResources
from engine.units import human_size
from engine.vae_memory import VaeOutOfMemory, is_out_of_memory
from engine.validate import validate_request


class Engine:
    """The local ``Backend``: loads one checkpoint at a time and runs generations on it.

    Not thread-safe: one thread (the app's worker, or the CLI's main thread) owns it. Cancel a
    running generation from any thread by setting the ``cancel`` event passed to ``generate``.
    """

    def __init__(
        self,
        device: str | None = None,
        precision: str = "auto",
        model_folders: Iterable[str | os.PathLike[str]] = (),
        library: ModelLibrary | None = None,
    ):
        """``library``: where ``list_models`` looks (by default the one the app and the CLI
        share, built on first use). ``model_folders``: more folders for that default library,
        scanned as folders the person added, for this engine only (nothing is saved)."""
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device, precision)
        # Why we are on the CPU, unless the caller chose it (then there is nothing to explain).
        self.device_note = "" if device or self.device.type != "cpu" else cpu_fallback_reason()
        self.model_folders = [Path(f).expanduser() for f in model_folders]
        if library is not None and self.model_folders:
            raise ValueError("give the model folders to the library: LibraryConfig(folders=...)")
        self._library = library
        self._bundle: ModelBundle | None = None
        self._info: ModelInfo | None = None
        self._label: ModelLabel | None = None
        self._loras: LoraManager | None = None  # the loaded model's LoRAs, made on first use
        # Requests already checked by ``validate`` (the CLI checks before the slow load): they
        # are frozen, so generate() need not check them again. By identity, not equality: two
        # equal requests may carry different init images.
        self._checked: dict[int, weakref.ref[GenerationRequest]] = {}

    @property
    def model_info(self) -> ModelInfo | None:
        return self._info

    def _models_library(self) -> ModelLibrary:
        # Private: the default library holds model_folders in its config, which must never be
        # saved as if the person had added them (this engine never changes its settings).
        if self._library is None:
            config = load_config()
            config.folders += [str(f) for f in self.model_folders]
            self._library = ModelLibrary(config)
        return self._library

    def list_models(self) -> list[ModelRef]:
        """The checkpoints the library finds, and the loaded model, sorted by name. Checkpoints
        this engine cannot run are listed too, with their ``problem``, so the app can show them
        greyed out; LoRAs, VAEs and embeddings are not models to load."""
        # Keyed by the real path: a model loaded as "./m.safetensors" or through a symlink is
        # the same model as the one found in a folder.
        refs = {
            os.path.realpath(entry.path): _model_ref(entry)
            for entry in self._models_library().scan().entries
            if entry.kind == "checkpoint"
        }
        if self._info is not None:
            info = self._info
            loaded = ModelRef(
                info.path, info.name, info.path, info.family, info.inpainting, source="file"
            )
            refs.setdefault(os.path.realpath(info.path), loaded)
        return sorted(refs.values(), key=lambda r: (r.name.casefold(), r.id))

    def load_model(
        self, model: str | os.PathLike[str], on_progress: ProgressCallback | None = None
    ) -> ModelInfo:
        """Replace the current model (a path; for this backend a ``ModelRef.id`` is one). On
        error the previous model stays loaded."""
        path = Path(model).expanduser()
        start = time.perf_counter()
        bundle = _guard_oom(lambda: load_bundle(path, self.device, self.dtype, on_progress))
        self.unload()
        self._bundle, self._loras = bundle, None
        # A file's own name (the built-in demo's "Demo (shapes)") is also what its PNGs say.
        name = bundle.metadata.name or _model_name(path)
        self._label = ModelLabel(name, None)
        self._info = ModelInfo(
            name=name,
            path=str(path),
            family=bundle.family.name,
            inpainting=bundle.inpainting,
            device=str(self.device),
            dtype=dtype_name(self.dtype),
            load_seconds=time.perf_counter() - start,
            device_note=self.device_note,
            native_size=bundle.family.native_size,
        )
        return self._info

    def unload(self) -> None:
        if self._bundle is None:
            return  # nothing to free: a full collection costs ~0.13 s once torch is imported
        self._bundle = self._info = self._label = self._loras = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def validate(self, request: GenerationRequest) -> None:
        """Refuse a request with bad values (InvalidRequestError), before any work."""
        key = id(request)
        known = self._checked.get(key)
        if known is not None and known() is request:
            return
        validate_request(request)
        self.mark_checked(request)

    def mark_checked(self, request: GenerationRequest) -> None:
        """Record that ``request`` already passed ``engine.validate.validate_request``: the CLI
        checks requests before it imports torch (a typo must not cost seconds), so generate()
        need not check them again."""
        key = id(request)
        checked = self._checked

        def forget(_: object) -> None:  # the request is gone: its id may be reused
            checked.pop(key, None)

        checked[key] = weakref.ref(request, forget)

    def generate(
        self,
        request: GenerationRequest,
        *,
        on_step: StepCallback | None = None,
        on_image: ImageCallback | None = None,
        cancel: threading.Event | None = None,
        job_id: int = 0,
    ) -> GenerationResult:
        if self._bundle is None or self._info is None or self._label is None:
            raise NoModelError("No model is loaded. Open a Stable Diffusion 1.x checkpoint first.")
        self.validate(request)  # before hashing: a bad value must not cost seconds of work
        if self._label.hash is None and not Path(self._info.path).is_dir():
            # Hashing 2 GB takes seconds: done once, on first use, not while loading.
            self._label = ModelLabel(self._label.name, model_hash(Path(self._info.path)))
        bundle, label = self._bundle, self._label
        # The prompt keeps its <lora:...> tags (they go into the metadata); the text encoder
        # leaves them out. Only the prompt's tags count, not the negative prompt's (as A1111).
        loras = self._lora_manager(bundle)
        outcome = _guard_oom(lambda: loras.prepare(request.prompt), request)
        label = replace(label, lora_hashes=outcome.hashes)
        result = _guard_oom(
            lambda: generate(
                bundle,
                request,
                label,
                on_step=on_step,
                on_image=on_image,
                cancel=cancel,
                job_id=job_id,
                resources=self._prompt_resources(),
            ),
            request,
        )
        return replace(result, notes=outcome.notes + result.notes) if outcome.notes else result

    def _prompt_resources(self) -> PromptResources:
        """The embeddings a prompt may name: the library's, from its last scan (a first scan
        if none ran yet). A file added since then is found after the next scan."""
        library = self._models_library()
        return PromptResources.from_entries((library.last_scan or library.scan()).entries)

    def _lora_manager(self, bundle: ModelBundle) -> LoraManager:
        if self._loras is None:
            self._loras = LoraManager(bundle, self._models_library)
        return self._loras


def _model_name(path: Path) -> str:
    return path.name if path.is_dir() else path.stem


def _model_ref(entry: LibraryEntry) -> ModelRef:
    # The library names the problem of every checkpoint it would not load; the fallback only
    # guards the rule that a ref without a problem is one this engine can run.
    problem = entry.problem or ("" if entry.usable else f"{entry.family} is not supported")
    return ModelRef(
        id=entry.path,
        name=entry.name,
        path=entry.path,
        family=entry.family,
        inpainting=entry.inpainting,
        size=entry.size,
        source=entry.source,
        problem=problem,
    )


def _guard_oom(work, request: GenerationRequest | None = None):
    """Turn an out-of-memory into a message with a size that would fit, and free what we can so
    the engine stays usable for the next job."""
    try:
        return work()
    except Exception as e:
        if not is_out_of_memory(e):
            raise
        # Only this small record is kept: the error's frames (and their tensors) must go.
        vae_fit = e.fit if isinstance(e, VaeOutOfMemory) else None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    advice = _oom_advice(request)
    if request is not None and vae_fit is not None and vae_fit.fits():
        advice += _TILING_ADVICE.format(size=human_size(vae_fit.tiled_bytes))
    raise OutOfMemoryError(advice) from None


# Where the untiled VAE ran out and its tiled pass (the same picture) fits the memory now free.
_TILING_ADVICE = (
    " Or keep the size and turn VAE tiling on (--vae-tiling on, or auto): the VAE ran out of "
    "memory, and in tiles it needs about {size} here."
)


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
