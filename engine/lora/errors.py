"""What can go wrong with a ``<lora:...>`` tag; every message names the file or the tag."""

from engine.errors import EngineError


class LoraError(EngineError):
    """A LoRA named in the prompt cannot be used."""


class LoraNotFoundError(LoraError):
    """No LoRA file answers to the name in the tag (the message says where we looked)."""


class UnsupportedLoraError(LoraError):
    """A real network file of a kind or family this engine does not apply (LoHa, LoKr, SDXL)."""


class LoraMismatchError(LoraError):
    """A LoRA none of whose layers fits the loaded model."""
