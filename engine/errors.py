"""Errors a user can cause. Every message says what is wrong and what to do about it."""


class EngineError(Exception):
    """Base of all errors the engine reports to a person (CLI message, app dialog)."""


class CheckpointError(EngineError):
    """The model file or folder cannot be used."""


class NotACheckpointError(CheckpointError):
    """The file is not a Stable Diffusion checkpoint at all (or is a LoRA, VAE, ...)."""


class UnsupportedModelError(CheckpointError):
    """A real checkpoint, but of an architecture this version cannot run."""


class CorruptCheckpointError(CheckpointError):
    """Truncated or damaged file."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle that wants to run code or load arbitrary objects."""


class MissingComponentError(CheckpointError):
    """A part (UNet, VAE, text encoder, tokenizer) is absent."""


class InvalidRequestError(EngineError):
    """A generation request with values outside what the engine accepts."""


class ImageError(EngineError):
    """An init image that cannot be read or is refused (too large, not an image)."""


class OutOfMemoryError(EngineError):
    """The device ran out of memory; the message suggests a size or batch that fits."""


class NumericalError(EngineError):
    """The networks produced NaN or Inf even in float32: a broken model or settings."""


class EmbeddingError(EngineError):
    """A textual-inversion embedding named in a prompt cannot be used (unsafe, damaged, or made
    for another model family); the message names the file."""


class NoModelError(EngineError):
    """generate() was called before a model was loaded."""


class Cancelled(Exception):
    """Raised inside generate() when the job's cancel event is set. Not an error."""
