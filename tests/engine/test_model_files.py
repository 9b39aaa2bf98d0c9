"""Engine.list_models(): the checkpoints and diffusers folders the model library finds, by name.

Every Engine here gets its own library, which looks only in the folders a test gives it (as
folders the person added): never in this computer's home, Hugging Face cache or app folders.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import engine
from engine import Engine, ModelRef
from engine.library import LibraryConfig, ModelLibrary
from engine.library.walk import MAX_DEPTH
from tests.factories import VAE_PREFIX, tiny_sd1_state_dict, write_checkpoint


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    """One real tiny checkpoint per format, and a VAE alone: the library reads headers, so
    the files in a test folder must be real (they are hard links to these)."""
    folder = tmp_path_factory.mktemp("weights")
    sd = tiny_sd1_state_dict(seed=3)
    vae = {k: v for k, v in sd.items() if k.startswith(VAE_PREFIX)}
    return {
        ".safetensors": write_checkpoint(sd, folder / "tiny.safetensors"),
        ".ckpt": write_checkpoint(sd, folder / "tiny.ckpt"),
        "vae": write_checkpoint(vae, folder / "vae.safetensors"),
    }


@pytest.fixture
def real_ckpt(weights) -> Path:
    return weights[".safetensors"]


def _touch(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _link(source: Path, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.link(source, path)
    return path


def _diffusers_folder(path: Path) -> Path:
    """Named as a diffusers SD1 model (its weight files are empty: only names are looked at)."""
    _touch(path / "model_index.json", b'{"_class_name": "StableDiffusionPipeline"}')
    _touch(path / "unet" / "config.json", b'{"in_channels": 4, "cross_attention_dim": 768}')
    _touch(path / "unet" / "diffusion_pytorch_model.safetensors")
    _touch(path / "vae" / "diffusion_pytorch_model.safetensors")
    _touch(path / "text_encoder" / "model.safetensors")
    return path


@pytest.fixture
def models(tmp_path: Path, weights) -> Path:
    """A model folder as people keep them: sub-folders, clutter, hidden files, diffusers models,
    and files that are not whole models."""

    def model(relative: str) -> Path:
        return _link(weights[Path(relative).suffix.lower()], root / relative)

    root = tmp_path / "models"
    model("a.safetensors")
    model("B.ckpt")
    _link(weights["vae"], root / "vae-ft-mse.safetensors")  # a VAE: not a model to load
    _touch(root / "empty.safetensors")  # 0 bytes: an interrupted copy
    _touch(root / "notes.txt")
    _touch(root / "half.safetensors.part")
    model(".hidden.safetensors")
    model(".cache/cached.safetensors")
    _diffusers_folder(root / "sd15-diffusers")
    model("styles/c.SafeTensors")  # the suffix in any case
    model("styles/anime/d.ckpt")  # depth 3: the limit
    _diffusers_folder(root / "styles" / "anime" / "nested-diffusers")
    model("styles/anime/old/too-deep.ckpt")  # depth 4: not looked at
    return root


def _library(tmp_path: Path, *folders: str | Path) -> ModelLibrary:
    """A library that knows only ``folders``: its own settings, cache, home and app folder."""
    return ModelLibrary(
        LibraryConfig(folders=[str(f) for f in folders]),
        home=tmp_path / "no-home",
        env={},
        cache_path=tmp_path / "scan-cache.json",
        config_path=tmp_path / "library.json",
        models_dir=tmp_path / "no-app-models",
    )


def _engine(tmp_path: Path, *folders: str | Path, **kw) -> Engine:
    return Engine(device="cpu", library=_library(tmp_path, *folders), **kw)


def _listing(refs: list[ModelRef]) -> list[tuple[str, str]]:
    for ref in refs:
        assert ref.path == ref.id  # a local model: its id is where it is
    return [(ref.name, ref.id) for ref in refs]


def test_lists_checkpoints_and_diffusers_folders_sorted_by_name(models, tmp_path, weights):
    more = tmp_path / "more"
    _link(weights[".safetensors"], more / "z.safetensors")
    _link(weights[".ckpt"], more / "A2.ckpt")
    eng = _engine(tmp_path, models, more, tmp_path / "absent")
    refs = eng.list_models()
    assert _listing(refs) == [
        ("a", str(models / "a.safetensors")),
        ("A2", str(more / "A2.ckpt")),
        ("B", str(models / "B.ckpt")),
        ("c", str(models / "styles" / "c.SafeTensors")),
        ("d", str(models / "styles" / "anime" / "d.ckpt")),
        ("nested-diffusers", str(models / "styles" / "anime" / "nested-diffusers")),
        ("sd15-diffusers", str(models / "sd15-diffusers")),
        ("z", str(more / "z.safetensors")),
    ]
    # What the app shows beside each name: all found in folders the person added, all SD1.
    assert {(r.family, r.source, r.problem) for r in refs} == {("sd1", "user", "")}
    single = next(r for r in refs if r.name == "a")
    assert single.size == weights[".safetensors"].stat().st_size and not single.inpainting


def test_checkpoints_it_cannot_run_are_listed_with_the_reason(tmp_path):
    """Greyed out in the app: found, but with a problem (here a diffusers model of no known
    family); files that are not models at all (the VAE, the 0-byte file) are not offered."""
    folder = tmp_path / "models"
    odd = _diffusers_folder(folder / "odd-diffusers")
    _touch(odd / "unet" / "config.json", b'{"in_channels": 4, "cross_attention_dim": 4096}')
    (ref,) = _engine(tmp_path, folder).list_models()
    assert (ref.name, ref.family) == ("odd-diffusers", None)
    assert ref.problem and not ref.usable


def test_no_folders_and_missing_folders_list_nothing(tmp_path):
    assert _engine(tmp_path).list_models() == []
    assert _engine(tmp_path, tmp_path / "absent").list_models() == []
    a_file = _touch(tmp_path / "model.safetensors")  # a file given as a folder
    assert _engine(tmp_path, a_file).list_models() == []


def test_model_folders_join_the_default_library(tmp_path, monkeypatch, real_ckpt):
    """Without a library, the Engine builds the shared one (here in a fake home), and
    ``model_folders`` are looked in too, without being saved as the person's folders."""
    for var, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("LATENTDESK_MODEL_PATH", raising=False)
    a1111 = tmp_path / "home" / "stable-diffusion-webui" / "models" / "Stable-diffusion"
    _link(real_ckpt, a1111 / "from-a1111.safetensors")
    extra = tmp_path / "extra"
    _link(real_ckpt, extra / "extra.safetensors")
    refs = Engine(device="cpu", model_folders=[extra]).list_models()
    assert [(r.name, r.source) for r in refs] == [("extra", "user"), ("from-a1111", "a1111")]
    assert not (tmp_path / "config" / "latentdesk" / "library.json").exists()
    with pytest.raises(ValueError, match="library"):
        Engine(device="cpu", model_folders=[extra], library=_library(tmp_path))


def test_depth_limit(models, tmp_path):
    listed = {Path(ref.id).name for ref in _engine(tmp_path, models).list_models()}
    assert MAX_DEPTH == 3
    assert "d.ckpt" in listed and "too-deep.ckpt" not in listed


def test_each_model_once_even_when_folders_overlap(models, tmp_path):
    eng = _engine(tmp_path, models, models, models / "styles")
    ids = [ref.id for ref in eng.list_models()]
    assert len(ids) == len(set(ids))
    assert sorted(Path(i).name for i in ids) == sorted(
        ["a.safetensors", "B.ckpt", "c.SafeTensors", "d.ckpt", "nested-diffusers"]
        + ["sd15-diffusers"]
    )


def test_a_model_folder_that_is_a_diffusers_model_is_that_one_model(models, tmp_path):
    """Pointing the model folder at a diffusers model must not offer its component files."""
    model = models / "sd15-diffusers"
    refs = _engine(tmp_path, model).list_models()
    assert _listing(refs) == [("sd15-diffusers", str(model))]


def test_an_unreadable_folder_is_skipped(models, monkeypatch, tmp_path, real_ckpt):
    """A folder without permissions (faked: the tests may run as root, who has them all)."""
    locked = models / "styles"
    _link(real_ckpt, models / "z-listed-after-it.safetensors")  # the scan goes on past it
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
    library = _library(tmp_path, models)
    names = [ref.name for ref in Engine(device="cpu", library=library).list_models()]
    assert names == ["a", "B", "sd15-diffusers", "z-listed-after-it"]
    assert library.last_scan is not None
    assert [s.path for s in library.last_scan.skipped] == [str(locked)]  # shown, not hidden


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_a_symlink_loop_is_not_followed(models, tmp_path):
    (models / "styles" / "back").symlink_to(models, target_is_directory=True)
    names = [ref.name for ref in _engine(tmp_path, models).list_models()]
    assert names == ["a", "B", "c", "d", "nested-diffusers", "sd15-diffusers"]


def test_the_loaded_model_is_listed_once(models, real_ckpt, tmp_path):
    eng = _engine(tmp_path, models, precision="full")
    before = eng.list_models()
    # A model from elsewhere (opened with a file dialog) joins the list while it is loaded.
    elsewhere = tmp_path / "downloads" / "fresh.safetensors"
    elsewhere.parent.mkdir()
    shutil.copy(real_ckpt, elsewhere)
    eng.load_model(elsewhere)
    with_loaded = eng.list_models()
    path = str(elsewhere)
    assert ModelRef(path, "fresh", path, "sd1", inpainting=False, source="file") in with_loaded
    assert [r for r in with_loaded if r.name != "fresh"] == before
    assert [r.name for r in with_loaded] == sorted((r.name for r in with_loaded), key=str.casefold)
    # A listed model, loaded by its id, is not listed twice; the one from elsewhere leaves.
    listed = next(r for r in before if r.name == "a")
    assert eng.load_model(listed.id).name == "a"
    assert eng.list_models() == before
    # The same file by another spelling (a symlink to it) is still the same model.
    if os.name != "nt":
        alias = tmp_path / "alias.safetensors"
        alias.symlink_to(listed.id)
        eng.load_model(alias)
        assert eng.list_models() == before


def test_engine_is_a_backend(tmp_path):
    assert isinstance(_engine(tmp_path), engine.Backend)

    class NoListing:  # everything but list_models: the check is not vacuous
        model_info = None

        def load_model(self, model, on_progress=None): ...

        def generate(self, request, **kw): ...

    assert not isinstance(NoListing(), engine.Backend)
