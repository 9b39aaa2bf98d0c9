"""A stand-in for the built-in demo model: a tiny random SD 1.x file carrying the demo's
metadata keys (``engine.loading.file_metadata``), so tests run without the shipped file."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tests.factories import tiny_sd1_state_dict, write_checkpoint

DEMO_NAME = "Demo (shapes)"
NATIVE_SIZE = 128
# Factors that map every latent to 0 plus a bias: a preview made with them is one flat colour,
# (0.5, -0.5, 0) -> RGB (191, 64, 128), whatever the sampler's estimate holds.
FLAT_FACTORS = [[0.0, 0.0, 0.0]] * 4
FLAT_BIAS = [0.5, -0.5, 0.0]
FLAT_PREVIEW = [191, 64, 128]


def demo_metadata(**changes: str) -> dict[str, str]:
    meta = {
        "latentdesk.name": DEMO_NAME,
        "latentdesk.native_size": str(NATIVE_SIZE),
        "latentdesk.latent_rgb": json.dumps(FLAT_FACTORS),
        "latentdesk.latent_rgb_bias": json.dumps(FLAT_BIAS),
        "latentdesk.latent_scale": "0.5",
        "latentdesk.grammar": "shapes-1",
    }
    meta.update(changes)
    return {k: v for k, v in meta.items() if v}  # an empty value: leave the key out


def write_tiny_demo(folder: Path, **changes: str) -> Path:
    """``folder/demo-shapes.safetensors``: float16, as the shipped one."""
    folder.mkdir(parents=True, exist_ok=True)
    sd = tiny_sd1_state_dict(dtype=torch.float16)
    return write_checkpoint(sd, folder / "demo-shapes.safetensors", demo_metadata(**changes))
