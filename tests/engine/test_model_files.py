"""Engine.list_models(): checkpoint files and diffusers folders in the model folders, by name."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import engine
from engine import Engine, ModelRef
from engine.model_files import MAX_DEPTH, find_model_files
from tests.factories import tiny_sd1_state_dict, write_checkpoint


@pytest.fixture(scope="module")
def real_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    write_checkpoint(tiny_sd1_state_dict(seed=3), path)
    return path


def _touch(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _diffusers_folder(path: Path) -> Path:
    _touch(path / "model_index.json", b'{"_class_name": "StableDiffusionPipeline"}')
    _touch(path / "unet" / "diffusion_pytorch_model.safetensors")
    _touch(path / "vae" / "diffusion_pytorch_model.safetensors")
    _touch(path / "text_encoder" / "model.safetensors")
    return path


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """A model folder as people keep them: sub-folders, clutter, hidden files, diffusers models."""
    root = tmp_path / "models"
    _touch(root / "a.safetensors")
    _touch(root / "B.ckpt")
    _touch(root / "notes.txt")
    _touch(root / "half.safetensors.part")
    _touch(root / ".hidden.safetensors")
    _touch(root / ".cache" / "cached.safetensors")
    _diffusers_folder(root / "sd15-diffusers")
    _touch(root / "styles" / "c.SafeTensors")  # the suffix in any case
    _touch(root / "styles" / "anime" / "d.ckpt")  # depth 3: the limit
    _diffusers_folder(root / "styles" / "anime" / "nested-diffusers")
    _touch(root / "styles" / "anime" / "old" / "too-deep.ckpt")  # depth 4: not looked at
    return root


def _listing(refs: list[ModelRef]) -> list[tuple[str, str]]:
    for ref in refs:
        assert ref.path == ref.id  # a local model: its id is where it is
    return [(ref.name, ref.id) for ref in refs]


def test_lists_checkpoints_and_diffusers_folders_sorted_by_name(models, tmp_path):
    more = tmp_path / "more"
    _touch(more / "z.safetensors")
    _touch(more / "A2.ckpt")
    eng = Engine(device="cpu", model_folders=[models, str(more), tmp_path / "absent"])
    assert _listing(eng.list_models()) == [
        ("a", str(models / "a.safetensors")),
        ("A2", str(more / "A2.ckpt")),
        ("B", str(models / "B.ckpt")),
        ("c", str(models / "styles" / "c.SafeTensors")),
        ("d", str(models / "styles" / "anime" / "d.ckpt")),
        ("nested-diffusers", str(models / "styles" / "anime" / "nested-diffusers")),
        ("sd15-diffusers", str(models / "sd15-diffusers")),
        ("z", str(more / "z.safetensors")),
    ]


def test_no_folders_and_missing_folders_list_nothing(tmp_path):
    assert Engine(device="cpu").list_models() == []
    assert Engine(device="cpu", model_folders=[tmp_path / "absent"]).list_models() == []
    a_file = _touch(tmp_path / "model.safetensors")  # a file given as a folder
    assert Engine(device="cpu", model_folders=[a_file]).list_models() == []


def test_depth_limit(models):
    found = {p.name for p in find_model_files([models])}
    assert "d.ckpt" in found and "too-deep.ckpt" not in found
    assert MAX_DEPTH == 3
    assert {p.name for p in find_model_files([models], max_depth=1)} == {
        "a.safetensors",
        "B.ckpt",
        "sd15-diffusers",
    }
    assert "too-deep.ckpt" in {p.name for p in find_model_files([models], max_depth=4)}


def test_each_model_once_even_when_folders_overlap(models):
    eng = Engine(device="cpu", model_folders=[models, models, models / "styles"])
    ids = [ref.id for ref in eng.list_models()]
    assert len(ids) == len(set(ids))
    # The depth limit counts from each folder: seen from styles/, old/ is only 3 deep.
    assert sorted(Path(i).name for i in ids) == sorted(
        ["a.safetensors", "B.ckpt", "c.SafeTensors", "d.ckpt", "nested-diffusers"]
        + ["sd15-diffusers", "too-deep.ckpt"]
    )


def test_a_model_folder_that_is_a_diffusers_model_is_that_one_model(models):
    """Pointing the model folder at a diffusers model must not offer its component files."""
    model = models / "sd15-diffusers"
    refs = Engine(device="cpu", model_folders=[model]).list_models()
    assert _listing(refs) == [("sd15-diffusers", str(model))]


def test_an_unreadable_folder_is_skipped(models, monkeypatch):
    """A folder without permissions (faked: the tests may run as root, who has them all)."""
    locked = models / "styles"
    real_is_file, real_scandir = Path.is_file, os.scandir

    def denied(path):
        return PermissionError(13, "Permission denied", str(path))

    def is_file(path):
        if path.parent == locked:  # stat() of anything inside it
            raise denied(path)
        return real_is_file(path)

    def scandir(path="."):
        if Path(path) == locked:
            raise denied(path)
        return real_scandir(path)

    monkeypatch.setattr(Path, "is_file", is_file)
    monkeypatch.setattr(os, "scandir", scandir)
    names = [ref.name for ref in Engine(device="cpu", model_folders=[models]).list_models()]
    assert names == ["a", "B", "sd15-diffusers"]


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_a_symlink_loop_is_not_followed(models):
    (models / "styles" / "back").symlink_to(models, target_is_directory=True)
    names = [ref.name for ref in Engine(device="cpu", model_folders=[models]).list_models()]
    assert names == ["a", "B", "c", "d", "nested-diffusers", "sd15-diffusers"]


def test_the_loaded_model_is_listed_once(models, real_ckpt, tmp_path):
    eng = Engine(device="cpu", precision="full", model_folders=[models])
    before = eng.list_models()
    # A model from elsewhere (opened with a file dialog) joins the list while it is loaded.
    elsewhere = tmp_path / "downloads" / "fresh.safetensors"
    elsewhere.parent.mkdir()
    shutil.copy(real_ckpt, elsewhere)
    eng.load_model(elsewhere)
    with_loaded = eng.list_models()
    assert ModelRef(str(elsewhere), "fresh", str(elsewhere)) in with_loaded
    assert [r for r in with_loaded if r.name != "fresh"] == before
    assert [r.name for r in with_loaded] == sorted((r.name for r in with_loaded), key=str.casefold)
    # A listed model, loaded by its id, is not listed twice; the one from elsewhere leaves.
    listed = next(r for r in before if r.name == "a")
    shutil.copy(real_ckpt, listed.id)
    assert eng.load_model(listed.id).name == "a"
    assert eng.list_models() == before
    # The same file by another spelling (a symlink to it) is still the same model.
    if os.name != "nt":
        alias = tmp_path / "alias.safetensors"
        alias.symlink_to(listed.id)
        eng.load_model(alias)
        assert eng.list_models() == before


def test_engine_is_a_backend():
    assert isinstance(Engine(device="cpu"), engine.Backend)

    class NoListing:  # everything but list_models: the check is not vacuous
        model_info = None

        def load_model(self, model, on_progress=None): ...

        def generate(self, request, **kw): ...

    assert not isinstance(NoListing(), engine.Backend)
