"""Emit Qt signals safely.

PySide6 6.12 on Python < 3.12 returns ``True`` from ``SignalInstance.emit`` without taking a
reference, so every emit lowers the refcount of ``True`` until the interpreter aborts
("bool_dealloc: deallocating True or False"). All app code emits through :func:`emit`,
which gives the reference back when (and only when) the running PySide6 has the bug.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal, SignalInstance

_steals_true: bool | None = None


class _Probe(QObject):
    ping = Signal()


def _emit_steals_true() -> bool:
    global _steals_true
    if _steals_true is None:
        probe = _Probe()
        before = sys.getrefcount(True)
        probe.ping.emit()
        _steals_true = sys.getrefcount(True) < before
        if _steals_true:
            _give_back_true()
    return _steals_true


def _give_back_true() -> None:
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))


def emit(signal: SignalInstance, *args: Any) -> None:
    steals = _emit_steals_true()
    result = signal.emit(*args)
    if steals and result is True:
        _give_back_true()
