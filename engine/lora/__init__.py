"""LoRA: ``<lora:name:weight>`` tags applied to the loaded weights and removed exactly.

``formats`` reads kohya, diffusers and PEFT files; ``targets`` finds the layer each one changes;
``patcher`` writes and restores the weights; ``manager`` ties them to a prompt and the library.
Importing the package (and its errors) does not import torch: the app may name the errors.
"""

from engine.lora.errors import (
    LoraError,
    LoraMismatchError,
    LoraNotFoundError,
    UnsupportedLoraError,
)

__all__ = [
    "LoraError",
    "LoraMismatchError",
    "LoraNotFoundError",
    "UnsupportedLoraError",
]
