"""Emit Qt signals safely.

PySide6 6.12 on Python < 3.12 returns ``True`` from ``SignalInstance.emit`` without taking a
reference, so every emit lowers the refcount of ``True`` until the interpreter aborts
("bool_dealloc: deallocating True or False"). All app code emits through :func:`emit`,
which gives the reference back when (and only when) the running PySide6 has the bug.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from typing import Any, cast

from PySide6.QtCore import QObject, Signal, SignalInstance

from app import none_guard

_PROBES = 64


class _Probe(QObject):
    ping = Signal()


def _emit_steals_true() -> bool:
    """Whether this PySide6 has the bug, by watching True's refcount over a few emits.

    Run once, when this module is first imported: the app imports it before it starts any
    thread, and so does the test session. Later, other threads (a library scan parsing JSON, the
    worker emitting) take and drop references to True all the time and could hide the loss; a
    wrong answer here would be repeated by every later emit until the abort.
    """
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(_PROBES):
        probe.ping.emit()
    steals = before - sys.getrefcount(True) >= _PROBES // 2
    if steals:
        _give_back_true(_PROBES)
    return steals


def _give_back_true(count: int = 1) -> None:
    for _ in range(count):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))


_STEALS_TRUE = _emit_steals_true()
# Its cousin: void methods (QWidget.update, QPainter.fillRect...) drop a reference to None on
# every call; a few thousand strokes or scrolls would abort the interpreter. Every app module
# imports this one before any thread starts, so the whole app is covered from here.
none_guard.guard()


def emit(signal: SignalInstance, *args: Any) -> None:
    steals = _STEALS_TRUE
    # The stubs say emit returns None; the PySide6 versions with the bug return True.
    result = cast(Callable[..., object], signal.emit)(*args)
    if steals and result is True:
        _give_back_true()
