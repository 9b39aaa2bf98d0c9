"""Latentdesk's latent-diffusion engine: Stable Diffusion 1.x in plain PyTorch.

The public API is what this module exports. Importing it is cheap: torch is imported only when
an ``Engine`` is created, so the GUI can start before the heavy stack is loaded.
"""

from engine.api import (
    SAMPLERS,
    SCHEDULES,
    Backend,
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
from engine.errors import (
    Cancelled,
    CheckpointError,
    EngineError,
    ImageError,
    InvalidRequestError,
    NoModelError,
    OutOfMemoryError,
)

__all__ = [
    "SAMPLERS",
    "SCHEDULES",
    "Backend",
    "Cancelled",
    "CheckpointError",
    "Engine",
    "EngineError",
    "GeneratedImage",
    "GenerationRequest",
    "GenerationResult",
    "ImageCallback",
    "ImageError",
    "ImageEvent",
    "InvalidRequestError",
    "ModelInfo",
    "ModelRef",
    "NoModelError",
    "OutOfMemoryError",
    "ProgressCallback",
    "StepCallback",
    "StepEvent",
    "token_counts",
]


def __getattr__(name: str):
    # Engine pulls in torch; load it on first use, not at import.
    if name == "Engine":
        from engine.session import Engine

        return Engine
    if name == "token_counts":
        # Tokens per 75-token chunk, for the GUI's counter. Pure Python: no torch.
        from engine.text.tokenizer import chunk_counts

        return chunk_counts
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
