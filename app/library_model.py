"""What the window shows of the model library, without Qt: choices grouped by family, sizes and
download progress as text.

The scan (engine.library) says what a file is; this module decides how a person sees it: which
files belong in the model picker, under which heading, and why one is greyed out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.library.records import LibraryEntry, Place
from engine.units import human_duration, human_size

FAMILY_TITLES = {
    "sd1": "Stable Diffusion 1.x",
    "sd2": "Stable Diffusion 2.x",
    "sdxl": "Stable Diffusion XL",
}
UNREADABLE = "Cannot be read"
BUILT_IN = "Built in"  # the demo model's heading: a small model of shapes, not SD 1.x pictures
DEMO_NOTE = (
    "The built-in demo draws simple coloured shapes. Real pictures need a real model: "
    "File › Models… downloads Stable Diffusion 1.5."
)
UNSUPPORTED = " (not supported yet)"
SOURCE_TITLES = {
    "app": "Latentdesk",
    "user": "your folder",
    "env": "LATENTDESK_MODEL_PATH",
    "hf-cache": "Hugging Face cache",
    "a1111": "AUTOMATIC1111",
    "comfyui": "ComfyUI",
    "invokeai": "InvokeAI",
    "built-in": "built into Latentdesk",
}


@dataclass(frozen=True)
class ModelChoice:
    """One line of the model picker."""

    path: str
    name: str
    group: str  # the heading it is listed under
    size: str  # "4.27 GB"
    inpainting: bool
    source: str  # "AUTOMATIC1111", ...
    reason: str = ""  # why it cannot be picked; "" when it can

    @property
    def usable(self) -> bool:
        return not self.reason

    @property
    def label(self) -> str:
        badge = " · inpainting" if self.inpainting else ""
        return f"{self.name}{badge}"


def format_size(size: float | None) -> str:
    return "unknown size" if size is None else human_size(size)


def family_title(family: str | None) -> str:
    return FAMILY_TITLES.get(family or "", f"Family “{family}”" if family else "Unknown family")


def is_model_file(entry: LibraryEntry) -> bool:
    """What the picker lists: checkpoints, and damaged files that might have been one."""
    return entry.kind == "checkpoint" or (entry.kind == "unknown" and bool(entry.problem))


def choice_of(entry: LibraryEntry) -> ModelChoice:
    reason = "" if entry.usable else _reason(entry)
    group = UNREADABLE if entry.kind != "checkpoint" else family_title(entry.family)
    if entry.kind == "checkpoint" and entry.family != "sd1":
        group += UNSUPPORTED
    if entry.builtin and entry.usable:
        group = BUILT_IN
    source = SOURCE_TITLES.get(entry.source, entry.source)
    return ModelChoice(
        entry.path, entry.name, group, format_size(entry.size), entry.inpainting, source, reason
    )


def _reason(entry: LibraryEntry) -> str:
    if entry.problem:
        return entry.problem
    if entry.family != "sd1":
        return f"{family_title(entry.family)} models are not supported yet: only SD 1.x."
    return "This file cannot be used."


def model_choices(entries: Iterable[LibraryEntry]) -> list[ModelChoice]:
    """The picker's lines: usable families first, then the others, each sorted by name."""
    choices = [choice_of(e) for e in entries if is_model_file(e)]
    order = [FAMILY_TITLES["sd1"], *(t + UNSUPPORTED for t in FAMILY_TITLES.values())]

    def key(c: ModelChoice) -> tuple[int, int, str, str, str]:
        rank = order.index(c.group) if c.group in order else len(order)
        return (not c.usable, rank, c.group, c.name.casefold(), c.path)

    return sorted(choices, key=key)


def demo_to_start(entries: Iterable[LibraryEntry]) -> str | None:
    """The built-in demo's path when it is the only usable model (a fresh computer): the app
    loads it at start, so the first picture takes seconds. None when another model is there."""
    usable = [e for e in entries if e.usable]
    if any(not e.builtin for e in usable):
        return None
    return next((e.path for e in usable if e.builtin), None)


def is_builtin(entries: Iterable[LibraryEntry], path: str) -> bool:
    """Whether ``path`` is a model shipped with Latentdesk, among the library's entries."""
    return any(e.builtin and e.path == path for e in entries)


def grouped(choices: Iterable[ModelChoice]) -> list[tuple[str, list[ModelChoice]]]:
    """Consecutive choices under their heading, in the order given."""
    groups: list[tuple[str, list[ModelChoice]]] = []
    for choice in choices:
        if not groups or groups[-1][0] != choice.group:
            groups.append((choice.group, []))
        groups[-1][1].append(choice)
    return groups


def place_text(place: Place) -> str:
    """A folder of the library as the Models dialog lists it."""
    source = SOURCE_TITLES.get(place.source, place.source)
    return f"{place.path}  ({'added by you' if place.source == 'user' else source})"


def short_path(path: str | Path) -> str:
    """``~/…`` for paths in the home folder: shorter, and still a path a person can type."""
    path = Path(path)
    home = Path.home()
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)


def download_text(done: int, total: int | None, rate: float | None, left: float | None) -> str:
    """ "1.20 GB of 4.27 GB · 35.2 MB/s · 1 min 27 s left"."""
    text = format_size(done) + (f" of {format_size(total)}" if total else "")
    if rate:
        text += f" · {format_size(rate)}/s"
    if left is not None and rate:
        text += f" · {human_duration(left)} left"
    return text
