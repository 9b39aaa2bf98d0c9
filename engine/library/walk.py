"""Listing one place: model files, diffusers folders and Hugging Face cache repos, with what
could not be read reported as ``Skipped`` instead of raised.

Nothing is opened here except folder listings, ``stat`` and the few bytes of HF ``refs``;
what a file holds is ``classify``'s business. Hidden entries are skipped; folders are not
followed deeper than ``MAX_DEPTH`` (people sort models into a folder or two), and every folder
is listed once per scan by (device, inode), so overlapping places and link loops cost nothing.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.library.classify import DIFFUSERS_INDEX, diffusers_weight_files
from engine.library.records import Skipped

MODEL_SUFFIXES = (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin")
MAX_DEPTH = 3  # people sort models into a folder or two; deeper trees are someone else's
HF_REPO_PREFIX = "models--"  # huggingface_hub's cache: models--{org}--{name}/snapshots/{rev}/

FolderKey = tuple[int, int]  # (st_dev, st_ino)


@dataclass(frozen=True)
class Found:
    """A model file or diffusers folder, and the fingerprint the cache is keyed by."""

    path: Path  # as reached from the place (an HF snapshot link, not its blob)
    real: str  # os.path.realpath: the same file reached twice is one model
    name: str
    size: int
    mtime_ns: int
    folder: bool = False  # a diffusers folder


def list_folder(folder: Path) -> list[os.DirEntry[str]]:
    """One folder's entries, by name. A network folder that hangs hangs here (the scan runs
    each place on its own thread for that reason); tests replace this to simulate it."""
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda e: e.name)


class Walk:
    """The listing of places, sharing one set of folders already listed."""

    def __init__(self, seen: set[FolderKey], tick: Callable[[], None] = lambda: None) -> None:
        self.seen = seen
        self.tick = tick  # called for every entry: the caller tells slow from stuck by it

    def place(self, root: Path) -> Iterator[Found | Skipped]:
        if _is_hf_repo(root):
            yield from self._hf_repo(root, ())
        elif _is_diffusers(root):
            yield from self._diffusers(root, root.name, ())
        else:
            yield from self._folder(root, MAX_DEPTH, ())

    def _enter(self, folder: Path, ancestors: tuple[FolderKey, ...]) -> FolderKey | Skipped | None:
        """The folder's key if it is new, a Skipped for a loop, None when already listed."""
        try:
            st = os.stat(folder)
        except OSError as e:
            return Skipped(str(folder), _reason(e))
        key = (st.st_dev, st.st_ino)
        if key in ancestors:
            return Skipped(str(folder), "folder loop: a link leads back to a folder above it")
        if key in self.seen:
            return None
        self.seen.add(key)
        return key

    def _folder(
        self, folder: Path, depth: int, ancestors: tuple[FolderKey, ...]
    ) -> Iterator[Found | Skipped]:
        key = self._enter(folder, ancestors)
        if not isinstance(key, tuple):
            if key is not None:
                yield key
            return
        try:
            entries = list_folder(folder)
        except OSError as e:
            yield Skipped(str(folder), _reason(e))
            return
        for entry in entries:
            self.tick()
            if not entry.name.startswith("."):
                yield from self._entry(entry, depth, (*ancestors, key))

    def _entry(
        self, entry: os.DirEntry[str], depth: int, ancestors: tuple[FolderKey, ...]
    ) -> Iterator[Found | Skipped]:
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir()
            is_file = not is_dir and entry.is_file()
            broken = not (is_dir or is_file) and entry.is_symlink()
        except OSError as e:
            yield Skipped(str(path), _reason(e))
            return
        if broken:
            yield Skipped(str(path), _broken_link_reason(path))
        elif is_file and path.suffix.lower() in MODEL_SUFFIXES:
            yield file_found(path, path.stem)
        elif is_dir and _is_hf_repo(path):
            yield from self._hf_repo(path, ancestors)
        elif is_dir and _is_diffusers(path):
            yield from self._diffusers(path, entry.name, ancestors)
        elif is_dir and depth > 1:
            yield from self._folder(path, depth - 1, ancestors)

    def _diffusers(
        self, folder: Path, name: str, ancestors: tuple[FolderKey, ...]
    ) -> Iterator[Found | Skipped]:
        """The folder is one model; single files beside model_index.json are models too (the
        SD 1.5 repo holds both), its sub-folders are its parts and are not listed."""
        key = self._enter(folder, ancestors)
        if not isinstance(key, tuple):
            if key is not None:
                yield key
            return
        yield diffusers_found(folder, name)
        try:
            entries = list_folder(folder)
        except OSError as e:
            yield Skipped(str(folder), _reason(e))
            return
        for entry in entries:
            self.tick()
            path = Path(entry.path)
            if entry.name.startswith(".") or path.suffix.lower() not in MODEL_SUFFIXES:
                continue
            yield from self._entry(entry, 1, (*ancestors, key))

    def _hf_repo(self, repo: Path, ancestors: tuple[FolderKey, ...]) -> Iterator[Found | Skipped]:
        """``models--org--name``: the snapshots its refs point to (all when none does). Files in
        a snapshot are links to ``blobs/``; they are followed, and named by the link."""
        name = repo.name.rsplit("--", 1)[-1]
        for snapshot in _hf_snapshots(repo):
            self.tick()
            if _is_diffusers(snapshot):
                yield from self._diffusers(snapshot, name, ancestors)
            else:
                yield from self._folder(snapshot, 2, ancestors)


def _is_hf_repo(folder: Path) -> bool:
    return folder.name.startswith(HF_REPO_PREFIX) and _test(Path.is_dir, folder / "snapshots")


def _is_diffusers(folder: Path) -> bool:
    return _test(Path.is_file, folder / DIFFUSERS_INDEX)


def _test(check: Callable[[Path], bool], path: Path) -> bool:
    """``Path.is_file``/``is_dir`` raise for a folder without permissions (only a missing path
    is False); here that is False too, and listing the folder then reports it."""
    try:
        return check(path)
    except OSError:
        return False


def _hf_snapshots(repo: Path) -> list[Path]:
    try:
        snapshots = sorted(p for p in (repo / "snapshots").iterdir() if p.is_dir())
    except OSError:
        return []
    wanted = set()
    try:
        for ref in (repo / "refs").iterdir():
            if ref.is_file() and ref.stat().st_size <= 100:
                wanted.add(ref.read_text(encoding="ascii", errors="replace").strip())
    except OSError:
        pass
    referenced = [s for s in snapshots if s.name in wanted]
    return referenced or snapshots


def file_found(path: Path, name: str) -> Found | Skipped:
    try:
        st = os.stat(path)  # follows links: the size and mtime of the real file
        return Found(path, os.path.realpath(path), name, st.st_size, st.st_mtime_ns)
    except OSError as e:
        return Skipped(str(path), _reason(e))


def diffusers_found(folder: Path, name: str) -> Found:
    """Fingerprint of a diffusers model: its weights' total size, the newest of its configs'
    and weights' mtimes (a re-download of any part changes it)."""
    files = [folder / DIFFUSERS_INDEX, folder / "unet" / "config.json"]
    weights = diffusers_weight_files(folder)
    size, mtime = 0, 0
    for path in files + weights:
        try:
            st = os.stat(path)
        except OSError:
            continue
        mtime = max(mtime, st.st_mtime_ns)
        size += st.st_size if path in weights else 0
    return Found(folder, os.path.realpath(folder), name, size, mtime, folder=True)


def _broken_link_reason(path: Path) -> str:
    try:
        return f"broken link (to {os.readlink(path)})"
    except OSError:
        return "broken link"


def _reason(e: OSError) -> str:
    if isinstance(e, PermissionError):
        return "permission denied"
    if isinstance(e, FileNotFoundError):
        return "vanished during the scan"
    if e.errno == errno.ELOOP:
        return "link loop"
    return e.strerror or str(e)
