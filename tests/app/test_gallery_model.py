"""The session's pictures without Qt: parameters, delete, Save as, unsaved images kept, files
gone elsewhere taken out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.gallery_model import GalleryError, GalleryModel
from app.jobs import FinishedImage
from engine.image_metadata import read_png_parameters
from engine.output import save_png

PARAMS = "a lighthouse\nSteps: 12, Sampler: Euler a, CFG scale: 5.5, Seed: 99, Size: 64x64"


def _png(folder: Path, parameters: str, mtime: float) -> Path:
    path = save_png(folder, np.zeros((8, 8, 3), np.uint8), parameters)
    os.utime(path, (mtime, mtime))
    return path


def _unsaved(value: int = 7) -> FinishedImage:
    return FinishedImage(np.full((8, 8, 3), value, np.uint8), 5, PARAMS, None, "disk full")


def test_imports_no_qt():
    code = "import sys, app.gallery_model; print(sorted(m for m in sys.modules if 'PySide' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _saved(path: Path) -> FinishedImage:
    return FinishedImage(np.zeros((8, 8, 3), np.uint8), 1, "", path)


def test_newest_first_and_files_gone_elsewhere_are_taken_out(tmp_path):
    first = _png(tmp_path, "a", 1_000_000)
    second = _png(tmp_path, "b", 2_000_000)
    _png(tmp_path, "from another day", 500_000)  # in the folder, not from this session
    model = GalleryModel()
    older, newer = model.add(_saved(first)), model.add(_saved(second))
    unsaved = model.add(_unsaved())
    assert model.entries == [unsaved, newer, older]
    first.unlink()
    assert model.forget_missing() == [older]
    assert model.entries == [unsaved, newer]  # an unsaved one has no file to miss


def test_a_saved_finished_image_keeps_no_pixels(tmp_path):
    path = _png(tmp_path, PARAMS, 1_000_000)
    model = GalleryModel()
    entry = model.add(FinishedImage(np.zeros((8, 8, 3), np.uint8), 99, PARAMS, path))
    assert entry.array is None and model.parameters(entry) == PARAMS
    assert model.entry_for_path(path) is entry


def test_parameters_of_an_entry_without_them_are_read_from_its_file_once(tmp_path):
    path = _png(tmp_path, PARAMS, 1_000_000)
    model = GalleryModel()
    entry = model.add(_saved(path))  # finished without parameters text
    assert model.parameters(entry) == PARAMS
    path.unlink()
    assert model.parameters(entry) == PARAMS  # kept: not read again


def test_delete_removes_file_and_entry(tmp_path):
    first = _png(tmp_path, "a", 1_000_000)
    second = _png(tmp_path, "b", 2_000_000)
    model = GalleryModel()
    model.add(_saved(first))
    model.add(_saved(second))
    model.delete(model.entries[1])
    assert not first.exists() and [e.path for e in model.entries] == [second]
    second.unlink()  # gone behind the model's back: deleting it is still fine
    model.delete(model.entries[0])
    assert model.entries == []


def test_delete_that_fails_keeps_the_entry_and_says_why(tmp_path):
    model = GalleryModel()
    stuck = tmp_path / "stuck.png"
    stuck.mkdir()  # unlink() cannot remove a folder, not even as root
    entry = model.add(FinishedImage(np.zeros((8, 8, 3), np.uint8), 1, "", stuck))
    with pytest.raises(GalleryError, match="Could not delete stuck.png"):
        model.delete(entry)
    assert model.entries == [entry]


def test_save_as_writes_the_unsaved_image_and_it_becomes_saved(tmp_path):
    model = GalleryModel()
    entry = model.add(_unsaved(value=77))
    target = model.save_as(entry, tmp_path / "kept.png")
    assert target == tmp_path / "kept.png" and entry.path == target and entry.array is None
    assert read_png_parameters(target) == PARAMS
    with pytest.raises(GalleryError, match="saved already"):
        model.save_as(entry, tmp_path / "again.png")


def test_save_as_into_a_missing_folder_keeps_the_pixels(tmp_path):
    model = GalleryModel()
    entry = model.add(_unsaved())
    with pytest.raises(GalleryError):
        model.save_as(entry, tmp_path / "no" / "such" / "folder" / "x.png")
    assert entry.path is None and entry.array is not None
