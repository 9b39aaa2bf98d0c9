"""ModelLibrary.scan over fake A1111 / ComfyUI / InvokeAI / HF-cache trees: everything found and
classified, nothing written, hostile and broken files shown instead of run or raised, a hanging
folder given up on, the cache used; find, folders and the last model."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import engine.library.scan as scan_module
import engine.library.walk as walk_module
from engine.errors import EngineError
from engine.library import (
    AmbiguousModelError,
    LibraryConfig,
    LibraryError,
    ModelLibrary,
    known_short_hash,
    load_config,
    remember_short_hash,
)
from engine.library.hashing import model_hash
from tests.engine.library.fake_homes import FakeHome, build_fake_home
from tests.engine.library.fake_models import (
    sdxl_shapes,
    tree_state,
    write_header_only,
    write_hostile_ckpt,
    write_tiny_sd1,
)

ROOT = Path(__file__).resolve().parents[3]


def library(tmp: Path, home: Path, env=None, config=None, **kwargs) -> ModelLibrary:
    """A library that touches nothing outside ``tmp``."""
    kwargs.setdefault("models_dir", tmp / "appdata" / "models")
    return ModelLibrary(
        config if config is not None else LibraryConfig(),
        home=home,
        env=env or {},
        cache_path=tmp / "cache" / "library-cache.json",
        config_path=tmp / "config" / "library.json",
        **kwargs,
    )


@pytest.fixture(scope="module")
def fake_home(tmp_path_factory) -> FakeHome:
    return build_fake_home(tmp_path_factory.mktemp("fakehome"))


def fake_home_library(fh: FakeHome, tmp: Path) -> ModelLibrary:
    config = LibraryConfig(folders=[str(fh.user_folder)])
    return library(tmp, fh.home, fh.env, config, models_dir=fh.models_dir)


@pytest.fixture
def counted(monkeypatch) -> list[Path]:
    """Every file or folder the scan really classifies (not from the cache)."""
    calls: list[Path] = []
    for name in ("inspect_file", "inspect_diffusers_folder"):
        real = getattr(scan_module, name)

        def counting(path, real=real):
            calls.append(path)
            return real(path)

        monkeypatch.setattr(scan_module, name, counting)
    return calls


# --- discovery and classification ----------------------------------------------------------


def test_every_install_is_found_and_classified(fake_home, tmp_path) -> None:
    result = fake_home_library(fake_home, tmp_path).scan()
    got = {e.path: e for e in result.entries}
    assert sorted(got) == sorted(fake_home.expected)
    for path, want in fake_home.expected.items():
        e = got[path]
        assert (e.name, e.kind, e.family, e.inpainting, e.source) == (
            want.name,
            want.kind,
            want.family,
            want.inpainting,
            want.source,
        ), path
        assert e.problem.startswith(want.problem) and bool(e.problem) == bool(want.problem), e
        assert e.size > 0
    # Named folders that are missing are shown: an env entry and a yaml line.
    reasons = {s.path: s.reason for s in result.skipped}
    assert reasons[str(fake_home.root / "gone")] == "folder not found"
    lycoris = fake_home.home / "stable-diffusion-webui" / "models" / "LyCORIS"
    assert reasons[str(lycoris)] == "folder not found"
    assert len(result.skipped) == 2, result.skipped


def test_usable_models_are_the_sd1_checkpoints(fake_home, tmp_path) -> None:
    result = fake_home_library(fake_home, tmp_path).scan()
    usable = sorted(e.name for e in result.entries if e.usable)
    assert usable == sorted(
        [
            "anime",
            "dreamshaper_8",
            "merge",
            "realistic",
            "sd-v1-5-inpainting",
            "stable-diffusion-inpainting",
            "stable-diffusion-v1-5",
            "v1-5-pruned-emaonly",
            "v1-5-pruned-emaonly",  # the app's own and the HF cache's single file
        ]
    )


def test_a_scan_writes_nothing_inside_the_scanned_places(fake_home, tmp_path) -> None:
    before = {root: tree_state(root) for root in fake_home.scanned_roots}
    lib = fake_home_library(fake_home, tmp_path)
    lib.scan()
    lib.scan()  # the cached path too
    lib.find("dreamshaper_8")
    after = {root: tree_state(root) for root in fake_home.scanned_roots}
    assert after == before
    assert (tmp_path / "cache" / "library-cache.json").is_file()  # it writes its own cache


def test_the_scan_does_not_import_torch(fake_home, tmp_path) -> None:
    """The CLI lists models and checks names before torch loads; .ckpt files included."""
    code = f"""
import sys
from pathlib import Path
from engine.library import LibraryConfig, ModelLibrary
lib = ModelLibrary(LibraryConfig(folders=[{str(fake_home.user_folder)!r}]),
    home=Path({str(fake_home.home)!r}), env={fake_home.env!r},
    cache_path=Path({str(tmp_path / "c.json")!r}), config_path=Path({str(tmp_path / "l.json")!r}),
    models_dir=Path({str(fake_home.models_dir)!r}))
result = lib.scan()
assert len(result.entries) == {len(fake_home.expected)}, result.entries
assert lib.find("anime").family == "sd1"
assert "torch" not in sys.modules, "torch was imported"
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_hostile_pickle_in_a_scanned_folder_never_runs(tmp_path) -> None:
    home, marker = tmp_path / "home", tmp_path / "marker"
    ckpts = home / "stable-diffusion-webui" / "models" / "Stable-diffusion"
    write_hostile_ckpt(ckpts / "free-model.ckpt", marker)
    write_hostile_ckpt(ckpts / "disguised.safetensors", marker)  # a pickle with a safe name
    result = library(tmp_path, home).scan()
    assert not marker.exists()
    assert len(result.entries) == 2
    for entry in result.entries:
        assert not entry.usable and "builtins.exec" in entry.problem, entry


# --- what goes wrong ----------------------------------------------------------------------


def test_broken_things_are_skipped_or_shown_never_raised(tmp_path, monkeypatch) -> None:
    home, folder = tmp_path / "home", tmp_path / "models"
    folder.mkdir(parents=True)
    (folder / "empty.safetensors").touch()
    (folder / "broken.safetensors").symlink_to(folder / "deleted.safetensors")
    (folder / "sub").mkdir()
    (folder / "sub" / "loop").symlink_to(folder)
    (folder / "self").symlink_to(folder / "self")
    os.mkfifo(folder / "pipe.safetensors")  # opening it would block: never opened
    data = write_tiny_sd1(tmp_path / "whole.safetensors").read_bytes()
    (folder / "cut.safetensors").write_bytes(data[: len(data) // 2])
    locked = write_tiny_sd1(folder / "locked.safetensors")
    _make_unreadable(locked, monkeypatch)
    write_tiny_sd1(folder / "fine.safetensors")
    config = LibraryConfig(folders=[str(folder), str(tmp_path / "unplugged")])

    result = library(tmp_path, home, config=config).scan()

    problems = {Path(e.path).name: e.problem for e in result.entries}
    assert problems["fine.safetensors"] == ""
    assert problems["empty.safetensors"].startswith("0-byte file")
    assert problems["cut.safetensors"].startswith("incomplete")
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert reasons["broken.safetensors"].startswith("broken link")
    assert reasons["loop"].startswith("folder loop")
    assert reasons["self"] == "link loop"
    assert reasons["locked.safetensors"] == "permission denied"
    assert reasons["unplugged"] == "folder not found"
    assert "pipe.safetensors" not in problems and "pipe.safetensors" not in reasons


def _make_unreadable(path: Path, monkeypatch) -> None:
    """chmod 000; as root (who reads anything) the classifier's open is made to refuse it."""
    path.chmod(0)
    if os.geteuid() != 0:
        return
    import engine.library.classify as classify_module

    real_open = open

    def refusing_open(file, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(classify_module, "open", refusing_open, raising=False)


def test_a_folder_that_vanishes_during_the_scan(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "models"
    write_tiny_sd1(folder / "a" / "x.safetensors")
    write_tiny_sd1(folder / "b" / "y.safetensors")
    real = walk_module.list_folder

    def list_then_unmount(path):
        entries = real(path)
        if path == folder:
            for name in ("a",):
                for f in (folder / name).iterdir():
                    f.unlink()
                (folder / name).rmdir()
        return entries

    monkeypatch.setattr(walk_module, "list_folder", list_then_unmount)
    result = library(tmp_path, tmp_path / "home", config=LibraryConfig([str(folder)])).scan()
    assert [Path(e.path).name for e in result.entries] == ["y.safetensors"]
    assert [(Path(s.path).name, s.reason) for s in result.skipped] == [
        ("a", "vanished during the scan")
    ]


def test_a_hanging_network_folder_is_given_up_on_and_the_rest_is_scanned(
    tmp_path, monkeypatch
) -> None:
    nas, local = tmp_path / "nas", tmp_path / "local"
    write_tiny_sd1(nas / "far.safetensors")
    write_tiny_sd1(local / "near.safetensors")
    release = threading.Event()
    real = walk_module.list_folder

    def hanging(path):
        if path == nas:
            release.wait(30)  # a dead NFS mount: the call just does not return
        return real(path)

    monkeypatch.setattr(walk_module, "list_folder", hanging)
    lib = library(tmp_path, tmp_path / "home", config=LibraryConfig([str(nas), str(local)]))
    try:
        start = time.monotonic()
        result = lib.scan(folder_timeout=0.5)
        elapsed = time.monotonic() - start
    finally:
        release.set()
    assert [Path(e.path).name for e in result.entries] == ["near.safetensors"]
    assert [(s.path, s.reason) for s in result.skipped] == [(str(nas), "not responding")]
    assert elapsed < 3.0


def test_a_slow_folder_that_keeps_answering_is_not_given_up_on(tmp_path, monkeypatch) -> None:
    """The timeout is for silence, not for the total: many slow answers are fine."""
    folder = tmp_path / "slow"
    for i in range(6):
        write_tiny_sd1(folder / f"d{i}" / f"m{i}.safetensors", seed=i)
    real = walk_module.list_folder

    def slow(path):
        time.sleep(0.15)
        return real(path)

    monkeypatch.setattr(walk_module, "list_folder", slow)
    lib = library(tmp_path, tmp_path / "home", config=LibraryConfig([str(folder)]))
    result = lib.scan(folder_timeout=0.5)
    assert len(result.entries) == 6 and result.skipped == ()
    assert result.seconds > 0.5


# --- the cache -----------------------------------------------------------------------------


def test_a_second_start_classifies_nothing_and_a_changed_file_is_looked_at_again(
    fake_home, tmp_path, counted
) -> None:
    first = fake_home_library(fake_home, tmp_path).scan()
    assert len(counted) == len(fake_home.expected)
    counted.clear()
    second = fake_home_library(fake_home, tmp_path).scan()  # a new process would do this
    assert counted == []
    assert second.entries == first.entries

    changed = fake_home.env_folder / "anime.ckpt"
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    try:
        third = fake_home_library(fake_home, tmp_path).scan()
    finally:
        os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert counted == [changed]
    assert third.entries == first.entries


def test_a_corrupt_cache_is_rebuilt_silently(fake_home, tmp_path, counted) -> None:
    cache = tmp_path / "cache" / "library-cache.json"
    cache.parent.mkdir(parents=True)
    for damage in ("{broken", json.dumps({"version": 1, "files": {"x": {"size": "big"}}}), "[]"):
        cache.write_text(damage)
        counted.clear()
        result = fake_home_library(fake_home, tmp_path).scan()
        assert len(result.entries) == len(fake_home.expected)
        assert len(counted) == len(fake_home.expected)
        assert json.loads(cache.read_text())["version"] == 1


def test_short_hashes_are_cached_with_the_scan(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "models"
    path = write_tiny_sd1(folder / "m.safetensors")
    cache_path = tmp_path / "cache" / "library-cache.json"
    lib = library(tmp_path, tmp_path / "home", config=LibraryConfig([str(folder)]))
    assert lib.scan().entries[0].short_hash is None  # scanning never hashes gigabytes

    expected = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    assert model_hash(path, cache_dir=cache_path.parent) == expected
    assert known_short_hash(path, cache_path=cache_path) == expected
    assert lib.scan().entries[0].short_hash == expected

    import engine.library.hashing as model_hash_module

    def no_hashing(_):
        raise AssertionError("hashed again")

    monkeypatch.setattr(model_hash_module, "sha256_file", no_hashing)
    assert model_hash(path, cache_dir=cache_path.parent) == expected

    path.write_bytes(path.read_bytes() + b"")  # rewritten: a new mtime
    os.utime(path, ns=(1, 1))
    assert known_short_hash(path, cache_path=cache_path) is None


def test_a_download_remembers_its_hash_and_the_scan_shows_it(tmp_path) -> None:
    folder = tmp_path / "models"
    path = write_tiny_sd1(folder / "downloaded.safetensors")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    remember_short_hash(path, sha, cache_path=tmp_path / "cache" / "library-cache.json")
    lib = library(tmp_path, tmp_path / "home", config=LibraryConfig([str(folder)]))
    assert lib.scan().entries[0].short_hash == sha[:10]


# --- find, folders, last model ---------------------------------------------------------------


def test_find_by_path_by_name_and_ambiguous_names(fake_home, tmp_path) -> None:
    lib = fake_home_library(fake_home, tmp_path)
    anime = lib.find("ANIME")
    assert anime is not None and anime.source == "env"
    assert lib.find("anime.ckpt") == anime
    assert lib.find(fake_home.env_folder / "anime.ckpt") == anime
    assert lib.find("nothing-called-this") is None
    xl = lib.find("sd_xl_base_1.0")  # not usable, but known: the caller can say why
    assert xl is not None and xl.problem.startswith("SDXL")
    with pytest.raises(AmbiguousModelError) as info:
        lib.find("v1-5-pruned-emaonly")
    assert isinstance(info.value, EngineError)
    assert str(fake_home.models_dir / "v1-5-pruned-emaonly.safetensors") in str(info.value)
    assert "huggingface" in str(info.value)


def test_find_a_file_outside_every_place(tmp_path) -> None:
    lib = library(tmp_path, tmp_path / "home")
    lone = write_tiny_sd1(tmp_path / "downloads" / "lone.safetensors")
    entry = lib.find(str(lone))
    assert entry is not None and entry.usable and entry.source == "file"
    assert entry.size == lone.stat().st_size
    xl = write_header_only(sdxl_shapes(), tmp_path / "xl.safetensors")
    assert lib.find(xl).problem.startswith("SDXL")  # type: ignore[union-attr]


def test_folders_and_last_model_persist(tmp_path) -> None:
    folder = tmp_path / "new-folder"
    write_tiny_sd1(folder / "m.safetensors")
    lib = library(tmp_path, tmp_path / "home")
    assert lib.find("m") is None
    assert lib.add_folder(folder) == folder
    assert lib.find("m") is not None  # the next scan includes it
    lib.add_folder(str(folder))  # twice: once in the list
    lib.last_model = folder / "m.safetensors"

    again = ModelLibrary(
        home=tmp_path / "home",
        env={},
        cache_path=tmp_path / "cache" / "library-cache.json",
        config_path=tmp_path / "config" / "library.json",
        models_dir=tmp_path / "appdata" / "models",
    )
    assert again.config.folders == [str(folder)]
    assert again.last_model == str(folder / "m.safetensors")
    assert again.remove_folder(folder) is True and again.remove_folder(folder) is False
    assert load_config(tmp_path / "config" / "library.json").folders == []
    assert folder.is_dir()  # removing a folder from the list never touches the disk
    with pytest.raises(LibraryError, match="not a folder"):
        again.add_folder(tmp_path / "does-not-exist")


def test_a_corrupt_config_is_moved_aside_with_a_message(tmp_path) -> None:
    path = tmp_path / "config" / "library.json"
    path.parent.mkdir(parents=True)
    path.write_text("{half a file")
    lib = ModelLibrary(home=tmp_path, env={}, config_path=path, cache_path=tmp_path / "c.json")
    assert lib.config.folders == [] and "could not be read" in lib.config.warning
    assert not path.exists()
    assert len(list(path.parent.glob("library.json.broken-*"))) == 1
    lib.last_model = "x"
    assert json.loads(path.read_text()) == {"folders": [], "last_model": "x"}


def test_default_locations_are_platformdirs_ones(tmp_path) -> None:
    """conftest points the XDG variables at a sandbox, so these are not the real ones."""
    import platformdirs

    lib = ModelLibrary(home=tmp_path, env={})
    assert lib.models_dir == Path(platformdirs.user_data_dir("latentdesk")) / "models"
    assert str(lib.models_dir).startswith(os.environ["XDG_DATA_HOME"])
