"""The gallery model without Qt: listing, parameters, delete, Save as, unsaved images kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.gallery_model import FolderListing, GalleryError, GalleryModel
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


def test_folder_listing_is_newest_first_and_only_pngs(tmp_path):
    old = _png(tmp_path, "old", 1_000_000)
    new = _png(tmp_path, "new", 2_000_000)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"")
    assert FolderListing().images(tmp_path) == [new, old]
    assert FolderListing().images(tmp_path / "missing") == []


def test_set_folder_keeps_unsaved_images_in_front(tmp_path):
    saved = _png(tmp_path, "a", 1_000_000)
    model = GalleryModel()
    model.set_folder(tmp_path)
    unsaved = model.add(_unsaved())
    assert unsaved.array is not None and unsaved.path is None
    model.set_folder(tmp_path)  # a refresh
    assert model.entries[0] is unsaved and [e.path for e in model.entries] == [None, saved]
    model.set_folder(tmp_path / "elsewhere")
    assert model.entries == [unsaved]


def test_a_saved_finished_image_keeps_no_pixels(tmp_path):
    path = _png(tmp_path, PARAMS, 1_000_000)
    model = GalleryModel()
    entry = model.add(FinishedImage(np.zeros((8, 8, 3), np.uint8), 99, PARAMS, path))
    assert entry.array is None and model.parameters(entry) == PARAMS
    assert model.entry_for_path(path) is entry


class CountingListing(FolderListing):
    """Another listing behind the same model (as the gallery index will be)."""

    def __init__(self) -> None:
        self.reads: list[Path] = []

    def parameters(self, path: Path) -> str:
        self.reads.append(path)
        return super().parameters(path)


def test_parameters_are_read_from_the_listing_once(tmp_path):
    path = _png(tmp_path, PARAMS, 1_000_000)
    listing = CountingListing()
    model = GalleryModel(listing)
    model.set_folder(tmp_path)
    entry = model.entries[0]
    assert model.parameters(entry) == PARAMS and model.parameters(entry) == PARAMS
    assert listing.reads == [path]


def test_delete_removes_file_and_entry(tmp_path):
    first = _png(tmp_path, "a", 1_000_000)
    second = _png(tmp_path, "b", 2_000_000)
    model = GalleryModel()
    model.set_folder(tmp_path)
    model.delete(model.entries[1])
    assert not first.exists() and [e.path for e in model.entries] == [second]
    second.unlink()  # gone behind the model's back: deleting it is still fine
    model.delete(model.entries[0])
    assert model.entries == []


def test_delete_that_fails_keeps_the_entry_and_says_why(tmp_path):
    model = GalleryModel()
    model.set_folder(tmp_path)
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
