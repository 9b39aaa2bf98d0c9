"""The model library: every model on this computer, found read-only and classified by content.

``scan`` walks the places (``places.py``) one by one, each on a daemon thread, and classifies
what it finds (``classify.py``) unless the cache (``cache.py``) already knows the file at its
current size and mtime. A place that shows no sign of life for ``folder_timeout`` seconds (a
network folder that hangs) is reported as not responding and the scan goes on without it.
Nothing is ever written inside a scanned place.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from engine.errors import EngineError
from engine.library import builtin
from engine.library.cache import ScanCache, known_short_hash
from engine.library.classify import classify_path, inspect_diffusers_folder, inspect_file
from engine.library.config import (
    LibraryConfig,
    app_models_dir,
    config_path,
    load_config,
    save_config,
)
from engine.library.places import Candidate, Env, candidate_places, default_places, expand_path
from engine.library.records import (
    Classification,
    LibraryEntry,
    Place,
    ScanResult,
    Skipped,
)
from engine.library.walk import FolderKey, Found, Walk, diffusers_found, file_found


class LibraryError(EngineError):
    """A library request that cannot be done: a folder that does not exist, settings that
    cannot be saved."""


class AmbiguousModelError(LibraryError):
    """A model name that several files answer to; the message lists them."""

    def __init__(self, name: str, paths: list[str]) -> None:
        self.name, self.paths = name, paths
        listing = "\n".join(f"  {p}" for p in paths)
        super().__init__(
            f'Several models are called "{name}":\n{listing}\nGive the path of the one you mean.'
        )


class _Classified(NamedTuple):
    found: Found
    classification: Classification
    short_hash: str | None
    fresh: bool  # classified now (to be cached), not taken from the cache


@dataclass
class _PlaceScan:
    """One place's listing and classification, run on its own thread."""

    candidate: Candidate
    cache: ScanCache
    seen: set[FolderKey]
    found: list[_Classified] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    alive_at: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)

    def tick(self) -> None:
        self.alive_at = time.monotonic()

    def run(self) -> None:
        root = self.candidate.place.path
        try:
            if not os.path.isdir(root):  # a dead mount can hang right here: on this thread
                if self.candidate.named:
                    self.skipped.append(Skipped(str(root), "folder not found"))
                return
            for item in Walk(self.seen, self.tick).place(root):
                self.tick()
                if isinstance(item, Skipped):
                    self.skipped.append(item)
                else:
                    self._classify(item)
        except OSError as e:  # the walk reports what it can; this is a last guard
            self.skipped.append(Skipped(str(root), e.strerror or str(e)))
        finally:
            self.done.set()

    def _classify(self, found: Found) -> None:
        known = self.cache.lookup(found.real, found.size, found.mtime_ns)
        if known is not None and known.classification is not None:
            self.found.append(_Classified(found, known.classification, known.short_hash, False))
            return
        short_hash = known.short_hash if known else None
        try:
            if found.folder:
                classification = inspect_diffusers_folder(found.path)
            else:
                classification = inspect_file(found.path)
        except OSError as e:  # not cached: permissions can change without a new mtime
            reason = "permission denied" if isinstance(e, PermissionError) else e.strerror
            self.skipped.append(Skipped(str(found.path), reason or "cannot be read"))
            return
        except Exception as e:  # noqa: BLE001 - one odd file must not end the scan
            problem = f"could not be inspected ({type(e).__name__})"
            unknown = Classification("unknown", problem=problem)
            self.found.append(_Classified(found, unknown, None, False))
            return
        self.found.append(_Classified(found, classification, short_hash, True))


class ModelLibrary:
    """The models on this computer, the folders to look in, and the last model used."""

    def __init__(
        self,
        config: LibraryConfig | None = None,
        *,
        home: Path | None = None,
        env: Env | None = None,
        cache_path: Path | None = None,
        config_path: Path | None = None,
        models_dir: Path | None = None,
        builtin_models: list[Path] | None = None,
    ) -> None:
        """``builtin_models``: the files listed as built in (default: the ones shipped,
        ``engine.library.builtin``; [] lists none)."""
        self._config_path = config_path
        self._builtin = builtin.shipped_models() if builtin_models is None else builtin_models
        self.config = config if config is not None else load_config(config_path)
        self.home = home if home is not None else Path.home()
        self.env: Env = dict(os.environ if env is None else env)
        self._cache_path = cache_path
        self._models_dir = models_dir
        self._last: ScanResult | None = None
        self._by_real: dict[str, LibraryEntry] = {}
        self._scan_lock = threading.Lock()

    # --- where ---------------------------------------------------------------------------

    @property
    def models_dir(self) -> Path:
        """The app's own models folder (downloads go there); it may not exist yet."""
        return self._models_dir or app_models_dir()

    def places(self) -> list[Place]:
        """The existing folders the scan looks in, in order, each once."""
        return default_places(self.config, self.home, self.env, models_dir=self.models_dir)

    def add_folder(self, path: str | os.PathLike[str]) -> Path:
        """Scan this folder from now on (saved). Returns it as stored (absolute)."""
        folder = Path(os.path.abspath(expand_path(os.fspath(path), self.home, self.env)))
        if not _is_dir(folder):
            raise LibraryError(f"{folder} is not a folder. Choose a folder that holds models.")
        if str(folder) not in self.config.folders:
            self.config.folders.append(str(folder))
            self._save()
        self._last = None
        return folder

    def remove_folder(self, path: str | os.PathLike[str]) -> bool:
        """Stop scanning a folder added before; False when it was not in the list. Nothing on
        disk is touched."""
        folder = os.path.abspath(expand_path(os.fspath(path), self.home, self.env))
        kept = [f for f in self.config.folders if os.path.abspath(f) != folder]
        if len(kept) == len(self.config.folders):
            return False
        self.config.folders = kept
        self._save()
        self._last = None
        return True

    @property
    def last_model(self) -> str:
        return self.config.last_model

    @last_model.setter
    def last_model(self, path: str | os.PathLike[str]) -> None:
        self.config.last_model = os.fspath(path)
        self._save()

    def is_builtin(self, path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` is a model shipped with Latentdesk (the demo)."""
        real = os.path.realpath(path)
        return any(os.path.realpath(p) == real for p in self._builtin)

    def _save(self) -> None:
        try:
            save_config(self.config, self._config_path)
        except OSError as e:
            where = self._config_path or config_path()
            raise LibraryError(
                f"The model library settings could not be saved to {where} ({e.strerror or e})."
                " Check that the folder is writable."
            ) from None

    # --- what ----------------------------------------------------------------------------

    @property
    def last_scan(self) -> ScanResult | None:
        return self._last

    def scan(self, folder_timeout: float = 5.0) -> ScanResult:
        """Find and classify every model in the places; never raises for what it finds."""
        with self._scan_lock:
            start = time.perf_counter()
            cache = ScanCache(self._cache_path)
            candidates, skipped = candidate_places(
                self.config, self.home, self.env, models_dir=self.models_dir
            )
            seen: set[FolderKey] = set()
            entries: dict[str, LibraryEntry] = {}  # by real path: the first place wins
            for candidate in candidates:
                place = _run_place(_PlaceScan(candidate, cache, seen), folder_timeout)
                skipped += place.skipped
                for item in list(place.found):
                    found = item.found
                    if item.fresh:
                        cache.store(found.real, found.size, found.mtime_ns, item.classification)
                    if found.real not in entries:
                        entries[found.real] = _entry(
                            found, item.classification, item.short_hash, candidate.place.source
                        )
            cache.save()
            for entry in builtin.builtin_entries(self._builtin, self._cache_path):
                # Built in even when a scanned folder holds it too (the resources folder).
                entries[os.path.realpath(entry.path)] = entry
            result = ScanResult(
                tuple(entries.values()), tuple(skipped), time.perf_counter() - start
            )
            self._last, self._by_real = result, entries
            return result

    def find(self, name_or_path: str | os.PathLike[str]) -> LibraryEntry | None:
        """The model at this path (also outside the library), else the usable checkpoint with
        this name (case-insensitive; with or without its suffix). Raises AmbiguousModelError
        when several have the name."""
        if self._last is None:
            self.scan()
        text = os.fspath(name_or_path)
        path = expand_path(text, self.home, self.env)
        if text.strip() and _exists(path):
            return self._entry_at(path)
        usable = [e for e in self._by_real.values() if e.usable]
        checkpoints = [e for e in self._by_real.values() if e.kind == "checkpoint"]
        for pool in (usable, checkpoints):  # a known but unusable model: its problem is shown
            named = [e for e in pool if _answers_to(e, text)]
            if len(named) > 1:
                raise AmbiguousModelError(text, [e.path for e in named])
            if named:
                return named[0]
        return None

    def _entry_at(self, path: Path) -> LibraryEntry:
        """The library's entry for this file, or one made now for a file outside the places."""
        known = self._by_real.get(os.path.realpath(path))
        if known is not None:
            return known
        found = diffusers_found(path, path.name) if _is_dir(path) else file_found(path, path.stem)
        if isinstance(found, Skipped):
            found = Found(path, os.path.realpath(path), path.stem, 0, 0)
        short_hash = None if found.folder else known_short_hash(path, cache_path=self._cache_path)
        return _entry(found, classify_path(path), short_hash, "file")


def _run_place(place: _PlaceScan, timeout: float) -> _PlaceScan:
    """Run one place's scan on a daemon thread; give up on it after ``timeout`` seconds without
    progress. A thread stuck in the kernel cannot be killed: it is left behind, harmlessly."""
    thread = threading.Thread(
        target=place.run, name=f"library-scan {place.candidate.place.path}", daemon=True
    )
    thread.start()
    while not place.done.wait(max(0.0, place.alive_at + timeout - time.monotonic()) + 0.01):
        if time.monotonic() - place.alive_at >= timeout:
            place.skipped.append(Skipped(str(place.candidate.place.path), "not responding"))
            break
    return place


def _entry(found: Found, c: Classification, short_hash: str | None, source: str) -> LibraryEntry:
    return LibraryEntry(
        name=found.name,
        path=str(found.path),
        kind=c.kind,
        family=c.family,
        inpainting=c.inpainting,
        size=found.size,
        source=source,
        short_hash=short_hash,
        problem=c.problem,
    )


def _answers_to(entry: LibraryEntry, text: str) -> bool:
    wanted = text.strip().casefold()
    names = (entry.name.casefold(), Path(entry.path).name.casefold())
    return wanted in names or builtin.answers_to_alias(entry, wanted)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # no permission to look: not a folder this library can use
        return False


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False
