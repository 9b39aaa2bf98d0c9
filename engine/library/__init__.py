"""The model library: the models already on this computer, found read-only and classified from
their headers, with a scan cache. Importing it does not import torch (the CLI reports a wrong
model name before the slow imports; a scan of a thousand files must not wait for them).
"""

from engine.library.cache import known_short_hash, remember_short_hash
from engine.library.classify import classify_file, classify_path
from engine.library.config import (
    LibraryConfig,
    app_models_dir,
    cache_dir,
    load_config,
    save_config,
)
from engine.library.places import default_places
from engine.library.records import (
    KINDS,
    SOURCES,
    Classification,
    LibraryEntry,
    Place,
    ScanResult,
    Skipped,
)
from engine.library.scan import AmbiguousModelError, LibraryError, ModelLibrary

__all__ = [
    "KINDS",
    "SOURCES",
    "AmbiguousModelError",
    "Classification",
    "LibraryConfig",
    "LibraryEntry",
    "LibraryError",
    "ModelLibrary",
    "Place",
    "ScanResult",
    "Skipped",
    "app_models_dir",
    "cache_dir",
    "classify_file",
    "classify_path",
    "default_places",
    "known_short_hash",
    "load_config",
    "remember_short_hash",
    "save_config",
]
