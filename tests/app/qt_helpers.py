"""Small helpers shared by the app tests."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox


def dismiss_messages(qtbot, window):
    """Press OK on the message boxes, as the person would; the window is active again."""
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert boxes
    for box in boxes:
        box.accept()
    window.activateWindow()
    qtbot.wait_until(window.isActiveWindow, timeout=2000)
