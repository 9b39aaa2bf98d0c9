"""Keep ``None`` alive under PySide6 6.12 on Python < 3.12.

That PySide6 returns ``None`` from void C++ methods without taking a reference for it (the
cousin of the ``True`` bug app/signals.py works around): every call such as
``QWidget.update()`` or ``QPainter.fillRect()`` lowers None's reference count by one, and after
some ten thousand calls the interpreter aborts with "none_dealloc: deallocating None". A few
hundred calls per paint are nothing for a form, but the gallery browser's grid paints dozens of
cells per frame: one scroll through 10,000 pictures took 14,000 references of the 25,000 None
had, and a second one aborted. Python 3.12 made None immortal, which hides the bug there.

``guard()`` measures the loss once and, when there is one, gives None a reference count no
session can use up: what Python 3.12 does for every such object.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QPoint

_PROBES = 512
_RESERVE = 1 << 40  # references: at 100,000 lost per second, three hundred years
_guarded = False


def none_is_stolen() -> bool:
    """Whether void PySide6 calls lose a reference to None (measured, not assumed)."""
    point = QPoint()
    before = sys.getrefcount(None)
    for _ in range(_PROBES):
        point.setX(0)  # a void method; its result is dropped like any statement's
    return before - sys.getrefcount(None) >= _PROBES // 2


def guard() -> bool:
    """Protect None once per process; True when the bug is present (and now harmless)."""
    global _guarded
    if _guarded:
        return True
    if sys.version_info >= (3, 12) or not none_is_stolen():
        return False
    if hasattr(sys, "getobjects"):  # a Py_TRACE_REFS build: the count is not the first field
        for _ in range(1 << 22):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(None))
    else:  # CPython's object header starts with the reference count (Include/object.h)
        ctypes.c_ssize_t.from_address(id(None)).value += _RESERVE
    _guarded = True
    return True
