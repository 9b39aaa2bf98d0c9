"""What the model library knows about a file, as plain values (no torch, no Qt).

The scanner fills these in from file headers alone; the CLI prints them, the app shows them,
and ``engine.Engine.list_models`` turns the usable checkpoints into ``ModelRef``s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# What a file holds, decided from its tensor names and shapes, never from its folder.
KINDS = ("checkpoint", "lora", "vae", "embedding", "controlnet", "unknown")
# Where a scanned folder came from; "file": a path given directly, outside every place;
# "built-in": a model shipped with Latentdesk (engine.library.builtin).
BUILTIN_SOURCE = "built-in"
SOURCES = ("app", "user", "env", "hf-cache", "a1111", "comfyui", "invokeai", "file", BUILTIN_SOURCE)


@dataclass(frozen=True)
class Place:
    """A folder the library scans, and why it is scanned."""

    path: Path
    source: str  # one of SOURCES


@dataclass(frozen=True)
class Classification:
    """What the header says: kind, family ("sd1", "sd2", "sdxl" or None), inpainting."""

    kind: str
    family: str | None = None
    inpainting: bool = False
    problem: str = ""  # why the file cannot be read or used; "" when it can


@dataclass(frozen=True)
class LibraryEntry:
    """One model file (or diffusers folder) found on this computer."""

    name: str  # file stem or folder name, what a person types for --ckpt
    path: str
    kind: str
    family: str | None
    inpainting: bool
    size: int  # bytes (a diffusers folder: its weight files together)
    source: str
    short_hash: str | None = None  # A1111's: first 10 hex of the sha256, once known
    problem: str = ""  # shown greyed beside the name: unsupported family, damaged file, ...

    @property
    def usable(self) -> bool:
        """A checkpoint this engine can load and generate with."""
        return self.kind == "checkpoint" and self.family == "sd1" and not self.problem

    @property
    def builtin(self) -> bool:
        """Shipped with Latentdesk (the demo model): part of the installation, not the person's
        file, so it is never offered for deletion nor counted as an installed model."""
        return self.source == BUILTIN_SOURCE


@dataclass(frozen=True)
class Skipped:
    """A place or file the scan could not read, shown to the person instead of a crash."""

    path: str
    reason: str  # "not responding", "permission denied", "broken link", ...


@dataclass(frozen=True)
class ScanResult:
    entries: tuple[LibraryEntry, ...]
    skipped: tuple[Skipped, ...]
    seconds: float
