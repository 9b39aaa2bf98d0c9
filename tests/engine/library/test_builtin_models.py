"""The built-in demo model in the library: listed with every scan, found by name, never hashed
by a scan; and the shipped file itself (a checkout without it fails)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from engine.library import ModelLibrary
from engine.library.builtin import DEMO_ENV, DEMO_FILE, shipped_models
from engine.loading.file_metadata import read_metadata
from engine.session import Engine
from tests.demo_files import DEMO_NAME, write_tiny_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return write_tiny_demo(tmp_path_factory.mktemp("resources") / "demo")


def _library(tmp_path: Path, demo: Path | None, env: dict | None = None) -> ModelLibrary:
    return ModelLibrary(
        home=tmp_path / "home",
        env=env or {},
        cache_path=tmp_path / "cache.json",
        config_path=tmp_path / "library.json",
        models_dir=tmp_path / "models",
        builtin_models=[demo] if demo else [],
    )


def test_the_demo_is_listed_as_built_in_and_never_hashed_by_a_scan(tmp_path, demo, monkeypatch):
    import engine.library.hashing as hashing

    def no_hashing(path):
        raise AssertionError(f"a scan hashed {path}")

    monkeypatch.setattr(hashing, "sha256_file", no_hashing)
    result = _library(tmp_path, demo).scan()
    (entry,) = result.entries
    assert (entry.name, entry.source, entry.path) == (DEMO_NAME, "built-in", str(demo))
    assert entry.usable and entry.builtin and entry.family == "sd1" and not entry.inpainting
    assert entry.short_hash is None and entry.size == demo.stat().st_size


def test_the_demo_answers_to_demo_its_name_its_stem_and_its_path(tmp_path, demo):
    library = _library(tmp_path, demo)
    for name in ("demo", "DEMO", " Demo ", DEMO_NAME, "demo-shapes", "demo-shapes.safetensors"):
        entry = library.find(name)
        assert entry is not None and entry.builtin, name
    assert library.find(str(demo)).builtin
    assert library.is_builtin(demo) and not library.is_builtin(tmp_path / "other.safetensors")


def test_a_folder_holding_the_demo_file_does_not_make_it_a_second_model(tmp_path, demo):
    env = {"LATENTDESK_MODEL_PATH": str(demo.parent)}
    entries = _library(tmp_path, demo, env).scan().entries
    assert [(e.name, e.source) for e in entries] == [(DEMO_NAME, "built-in")]


def test_a_missing_demo_file_is_simply_not_listed(tmp_path):
    library = _library(tmp_path, tmp_path / "gone.safetensors")
    assert library.scan().entries == () and library.find("demo") is None


def test_the_engine_lists_the_demo_among_its_models(tmp_path, demo):
    engine = Engine(device="cpu", library=_library(tmp_path, demo))
    (ref,) = engine.list_models()
    assert (ref.id, ref.name, ref.source, ref.usable) == (str(demo), DEMO_NAME, "built-in", True)


def test_the_variable_names_another_demo_file_or_none(monkeypatch, demo):
    monkeypatch.setenv(DEMO_ENV, str(demo))
    assert shipped_models() == [demo]
    monkeypatch.setenv(DEMO_ENV, "")
    assert shipped_models() == []


# --- the shipped file ------------------------------------------------------------------------


@pytest.fixture
def shipped(monkeypatch) -> Path:
    monkeypatch.delenv(DEMO_ENV, raising=False)
    found = shipped_models()
    assert found, f"resources/{'/'.join(DEMO_FILE)} is missing: it ships with the app"
    return found[0]


def _header(path: Path) -> dict:
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length))


def test_the_shipped_demo_keeps_the_contract(shipped, tmp_path):
    assert shipped.parts[-2:] == DEMO_FILE
    header = _header(shipped)
    raw = header.pop("__metadata__")
    assert {info["dtype"] for info in header.values()} == {"F16"}
    assert any(k.startswith("model.diffusion_model.") for k in header)  # the original keys
    meta = read_metadata(shipped, 4)
    assert meta.name == DEMO_NAME and raw["latentdesk.name"] == DEMO_NAME
    assert meta.native_size in (64, 128)
    assert meta.latent_rgb is not None and meta.latent_rgb_bias is not None  # well-formed
    library = ModelLibrary(home=tmp_path, env={}, cache_path=tmp_path / "c.json")
    entry = library.find("demo")
    assert entry is not None and entry.usable and entry.path == str(shipped)
