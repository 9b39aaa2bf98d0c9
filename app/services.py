"""What the app needs from outside itself: something that makes pictures, a way to keep them,
the model library, the downloader, the file manager, and the gallery index.

One typed seam, passed as one parameter from the window to the controller to the worker. The
real app uses the defaults; tests pass a fake backend, a saver that records, a fake library.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from engine import Backend, GeneratedImage
from engine.library.config import LibraryConfig
from engine.library.records import Place, ScanResult
from engine.output import save_png as write_png

if TYPE_CHECKING:  # huggingface_hub loads only when a download starts
    from app.gallery_service import GalleryService
    from engine.library.download import DownloadProgress, DownloadResult, DownloadSpec

# Writes one finished image into a folder; returns its path. Raises EngineError or OSError.
Saver = Callable[[Path, GeneratedImage], Path]


class Library(Protocol):
    """What the app needs of ``engine.library.ModelLibrary``. Used on one pool thread only.
    Changing the folders or the last model saves them; a failure raises EngineError."""

    last_model: str  # persisted, shared with the CLI; "" when none
    config: LibraryConfig  # its ``warning`` says when the saved settings were unreadable

    @property
    def models_dir(self) -> Path: ...

    def places(self) -> Sequence[Place]: ...

    def scan(self, folder_timeout: float = 5.0) -> ScanResult: ...

    def add_folder(self, path: str | Path) -> object: ...

    def remove_folder(self, path: str | Path) -> object: ...


class Downloader(Protocol):
    """``engine.library.download.download``: blocking; raises EngineError, or Cancelled."""

    def __call__(
        self,
        spec: DownloadSpec,
        dest_dir: Path,
        *,
        on_progress: Callable[[DownloadProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> DownloadResult: ...


def local_engine() -> Backend:
    """The local engine. Called on the worker thread: creating it imports torch."""
    from engine import Engine

    return Engine()


def save_png(folder: Path, image: GeneratedImage) -> Path:
    """A time-sorted PNG named after the image's seed, carrying its parameters."""
    return write_png(folder, image.image, image.parameters, stem=image.seed)


def local_library() -> Library:
    """The library of this computer's models. Called on a pool thread: it reads its config."""
    from engine.library import ModelLibrary

    return ModelLibrary()


def download_from_hub(
    spec: DownloadSpec,
    dest_dir: Path,
    *,
    on_progress: Callable[[DownloadProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> DownloadResult:
    from engine.library.download import download as hub_download

    return hub_download(spec, dest_dir, on_progress=on_progress, cancel=cancel)


def stable_diffusion_15() -> DownloadSpec:
    """What the welcome panel offers to download: Stable Diffusion 1.5."""
    from engine.library.download import PRESETS

    return PRESETS["stable-diffusion-1.5"]


def local_gallery(gallery_dir: Path) -> GalleryService:
    """The gallery index of this computer (in the user data folder), kept up to date while the
    app runs. Made on the GUI thread; it opens and syncs the index on its own thread."""
    from app.gallery_service import GalleryService

    return GalleryService(gallery_dir)


def reveal_in_file_manager(folder: Path) -> bool:
    """Open ``folder`` in the file manager; False when the desktop has none to open it."""
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QDesktopServices

    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


@dataclass(frozen=True)
class Services:
    backend_factory: Callable[[], Backend] = local_engine
    save_image: Saver = save_png
    library_factory: Callable[[], Library] = local_library
    download: Downloader = download_from_hub
    starter_model: Callable[[], DownloadSpec] = stable_diffusion_15
    reveal: Callable[[Path], bool] = reveal_in_file_manager
    gallery: Callable[[Path], GalleryService] = local_gallery  # given the gallery folder
