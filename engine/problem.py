"""`Problem`: something that keeps Latentdesk from working well here, and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    what: str  # what is wrong, in a sentence a person understands
    fix: str  # the line (a command, or one instruction) that fixes it
