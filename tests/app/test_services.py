"""The app's one seam to the outside: the real defaults, and an app that starts without torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from app.services import Services
from engine import Backend, GeneratedImage
from engine.image_metadata import read_png_parameters


def test_default_saver_writes_a_png_named_by_the_seed(tmp_path):
    image = GeneratedImage(np.zeros((8, 8, 3), np.uint8), 3_000_000_001, "cat\nSeed: 3000000001")
    path = Services().save_image(tmp_path / "gallery", image)
    assert path.parent == tmp_path / "gallery" and "-3000000001-" in path.name
    assert read_png_parameters(path) == "cat\nSeed: 3000000001"


def test_default_backend_is_the_local_engine():
    from engine import Engine

    backend = Services().backend_factory()
    assert isinstance(backend, Engine) and isinstance(backend, Backend)
    assert backend.model_info is None


def test_the_window_module_loads_without_torch():
    # torch takes seconds to import: the worker thread imports it, never the app's start.
    code = (
        "import sys, app.window, app.main; "
        "print(sorted(m for m in ('torch', 'safetensors', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
