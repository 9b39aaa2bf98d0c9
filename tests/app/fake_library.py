"""A stand-in for ``engine.library.ModelLibrary``: entries given by the test, folders in memory.

It records the threads it is used on, so tests can check that the GUI thread never scans, and
can hold a scan until the test lets it go.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from engine.library.config import LibraryConfig
from engine.library.records import LibraryEntry, Place, ScanResult, Skipped


def entry(path: Path | str, family: str | None = "sd1", **fields: object) -> LibraryEntry:
    """A checkpoint entry for ``path``; ``fields`` override kind, inpainting, size, problem…"""
    path = Path(path)
    values: dict[str, object] = dict(
        name=path.stem,
        path=str(path),
        kind="checkpoint",
        family=family,
        inpainting=False,
        size=2_132_625_894,
        source="a1111",
    )
    values.update(fields)
    return LibraryEntry(**values)  # type: ignore[arg-type]


class FakeLibrary:
    def __init__(
        self,
        entries: Sequence[LibraryEntry] = (),
        skipped: Sequence[Skipped] = (),
        models_dir: Path = Path("/models"),
    ) -> None:
        self.entries = list(entries)
        self.skipped = list(skipped)
        self.folders: list[str] = []
        self.last_model = ""
        self.config = LibraryConfig()
        self._models_dir = models_dir
        self.threads: list[str] = []
        self.scans = 0
        self.release = threading.Event()  # cleared by a test to hold scans
        self.release.set()

    @property
    def models_dir(self) -> Path:
        return self._models_dir

    def places(self) -> list[Place]:
        return [Place(self._models_dir, "app"), *(Place(Path(f), "user") for f in self.folders)]

    def scan(self, folder_timeout: float = 5.0) -> ScanResult:
        self.threads.append(threading.current_thread().name)
        self.release.wait(10)
        self.scans += 1
        return ScanResult(tuple(self.entries), tuple(self.skipped), 0.01)

    def add_folder(self, path: str | Path) -> None:
        self.folders.append(str(path))

    def remove_folder(self, path: str | Path) -> None:
        self.folders.remove(str(path))
