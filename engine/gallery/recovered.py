"""What could be read back from an image file's metadata, whichever tool wrote it: one record.

Readers (``engine.gallery.read``) fill what the file holds and list the rest in ``missing``;
``notes`` says what was found but cannot be used as is (a seed beyond our range, an unknown
sampler). ``request_fields`` keeps only what the window can put back into its controls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# The fields every reader tries to recover, in the order ``latentdesk-cli info`` prints them.
FIELDS = (
    "prompt",
    "negative_prompt",
    "seed",
    "steps",
    "cfg_scale",
    "sampler",
    "schedule",
    "width",
    "height",
    "model",
    "model_hash",
)


@dataclass(frozen=True)
class RecoveredParameters:
    tool: str  # "Latentdesk", "A1111", "ComfyUI", "InvokeAI", "Fooocus", "NovelAI"
    prompt: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None  # as written: may be beyond our 0..2**32-1 (see notes)
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str | None = None  # as the tool names it ("DPM++ 2M", "euler_ancestral")
    schedule: str | None = None  # as the tool names it ("Karras", "karras", "normal")
    width: int | None = None
    height: int | None = None
    model: str | None = None
    model_hash: str | None = None
    strength: float | None = None  # img2img denoising strength, when the tool wrote one
    settings: Mapping[str, str] = field(default_factory=dict)  # everything else, as written
    notes: tuple[str, ...] = ()  # found but not usable as is, in words for a person
    text: str | None = None  # the raw text the fields came from (A1111 text, JSON), bounded

    @property
    def missing(self) -> tuple[str, ...]:
        """The fields of FIELDS this file did not give."""
        return tuple(name for name in FIELDS if getattr(self, name) is None)
