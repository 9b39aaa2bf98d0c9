"""Small helpers for building widgets."""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import QObject

W = TypeVar("W", bound=QObject)


def named(widget: W, name: str) -> W:
    """``widget`` with an ``objectName``, for the tests and people who drive the window.

    PySide6 also takes ``objectName=`` as a keyword, but its type stubs do not list inherited
    properties, so mypy could not check such calls.
    """
    widget.setObjectName(name)
    return widget
