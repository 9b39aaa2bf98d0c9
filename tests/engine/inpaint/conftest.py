"""Tiny random checkpoints (a 9-channel inpainting one and a normal one), loaded by the Engine
through the real file path, shared by the inpainting tests."""

import numpy as np
import pytest

from engine import Engine
from tests.factories import tiny_sd1_state_dict, write_checkpoint

SIZE = 64  # pixels; the tiny VAE's factor is 4, so latents are 16x16


@pytest.fixture(scope="session")
def inpaint_weights():
    return tiny_sd1_state_dict(seed=5, inpainting=True)


@pytest.fixture(scope="session")
def inpaint_engine(inpaint_weights, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny-sd1-inpainting.safetensors"
    write_checkpoint(inpaint_weights, path)
    eng = Engine(device="cpu", precision="full")
    eng.load_model(path)
    return eng


@pytest.fixture(scope="session")
def normal_engine(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny-sd1.safetensors"
    write_checkpoint(tiny_sd1_state_dict(seed=3), path)
    eng = Engine(device="cpu", precision="full")
    eng.load_model(path)
    return eng


def drawn_picture(size: int = SIZE) -> np.ndarray:
    """A picture where every pixel differs from its neighbours: a moved or scaled paste shows."""
    y, x = np.mgrid[0:size, 0:size]
    img = np.stack([x * 4, y * 4, (x + y) * 2], axis=-1) % 256
    return img.astype(np.uint8)  # (size, size, 3)


def box_mask(top: int, left: int, bottom: int, right: int, size: int = SIZE) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[top:bottom, left:right] = 255
    return mask
