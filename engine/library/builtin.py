"""The models that ship with Latentdesk: the demo model, trained by the project on pictures of
simple shapes (``resources/demo/``, made by ``python -m engine.demo.train``).

It is listed with every scan as a "built-in" entry. Its file is small and read-only, so the
entry is made from its header each time (no scan cache); its hash is never computed here,
only taken from the cache when the engine already hashed it for a picture's metadata.
``LATENTDESK_DEMO_MODEL`` names another file to list instead (a package that installs its data
elsewhere), or none when empty (the test suite sets it so: a library then lists only the models
a test lays out).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from engine.family import SD1
from engine.library.cache import known_short_hash
from engine.library.classify import classify_file
from engine.library.records import BUILTIN_SOURCE, LibraryEntry
from engine.loading.file_metadata import read_metadata
from engine.resources import resource_path

DEMO_FILE = ("demo", "demo-shapes.safetensors")
DEMO_NAME = "Demo (shapes)"  # the file's own latentdesk.name says the same
DEMO_ALIASES = ("demo", "demo-shapes")  # what `--ckpt` also accepts
DEMO_ENV = "LATENTDESK_DEMO_MODEL"


def shipped_models() -> list[Path]:
    """The built-in model files present in this installation (none in a build without them)."""
    override = os.environ.get(DEMO_ENV)
    if override is not None:
        return [Path(override).expanduser()] if override.strip() else []
    try:
        return [resource_path(*DEMO_FILE)]
    except FileNotFoundError:
        return []


def builtin_entries(paths: Iterable[Path], cache_path: Path | None = None) -> list[LibraryEntry]:
    """One entry per file that still exists; ``cache_path``: the library's scan cache."""
    entries = []
    for path in paths:
        try:
            size = os.stat(path).st_size
        except OSError:
            continue  # a packaging mistake must not stop the library: the demo is just absent
        c = classify_file(path)
        entries.append(
            LibraryEntry(
                name=read_metadata(path, SD1.latent_channels).name or DEMO_NAME,
                path=str(path),
                kind=c.kind,
                family=c.family,
                inpainting=c.inpainting,
                size=size,
                source=BUILTIN_SOURCE,
                short_hash=known_short_hash(path, cache_path=cache_path),
                problem=c.problem,
            )
        )
    return entries


def answers_to_alias(entry: LibraryEntry, wanted: str) -> bool:
    """``--ckpt demo``: the built-in demo's short names (``wanted`` casefolded)."""
    return entry.builtin and wanted in DEMO_ALIASES
