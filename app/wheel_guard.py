"""Scrolling the controls panel with the mouse wheel must scroll it, not change the combo box,
spin box or slider that happens to pass under the pointer (Qt's default: a person scrolling
down the left column once switched the preset and with it the steps and guidance, seen under
Xvfb). A control takes the wheel only once it has the keyboard focus (clicked or tabbed to).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QScrollArea,
    QWidget,
)

GUARDED = (QComboBox, QAbstractSpinBox, QAbstractSlider)


class WheelGuard(QObject):
    """Sends the wheel events of unfocused controls to the scroll area instead."""

    def __init__(self, scroll: QScrollArea) -> None:
        super().__init__(scroll)
        self.scroll = scroll

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if (
            event.type() == QEvent.Type.Wheel
            and isinstance(watched, QWidget)
            and not watched.hasFocus()
        ):
            QApplication.sendEvent(self.scroll.verticalScrollBar(), event)
            return True
        return False


def guard_wheel(scroll: QScrollArea) -> WheelGuard:
    """Guard every control inside ``scroll``'s widget (call once its contents are built)."""
    guard = WheelGuard(scroll)
    content = scroll.widget()
    for control in content.findChildren(QWidget) if content is not None else []:
        if isinstance(control, GUARDED):
            # A click or Tab gives the focus (and with it the wheel); hovering does not.
            control.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            control.installEventFilter(guard)
    return guard
