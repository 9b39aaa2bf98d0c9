"""Qt text positions count UTF-16 units; Python strings count code points. An emoji or any
character beyond U+FFFF is two units in Qt and one character in Python, so every position that
crosses between a Qt text widget and Python string code goes through these."""

from __future__ import annotations


def to_utf16(text: str, index: int) -> int:
    """The Qt position of the Python index ``index`` in ``text``."""
    return index + sum(1 for ch in text[:index] if ord(ch) > 0xFFFF)


def from_utf16(text: str, position: int) -> int:
    """The Python index of the Qt position ``position`` in ``text`` (clamped to the text)."""
    units = 0
    for i, ch in enumerate(text):
        if units >= position:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(text)
