"""The wheel over the controls scrolls the panel; it changes a control only once focused."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QComboBox, QScrollArea

from app.services import Services
from app.settings import Settings
from app.window import MainWindow
from tests.app.fake_engine import FakeEngine, MemorySaver


def _wheel(widget, steps: int = -1) -> None:
    at = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(
        at,
        widget.mapToGlobal(at),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def test_wheel_scrolls_the_panel_until_a_control_is_focused(qtbot, tmp_path):
    services = Services(lambda: FakeEngine(step_seconds=0.0), MemorySaver())
    w = MainWindow(Settings(), tmp_path / "gallery", services, tmp_path / "s.json")
    qtbot.addWidget(w)
    w.resize(1000, 500)  # short: the controls need scrolling
    w.show()
    w.controls.advanced.set_open(True)
    scroll = w.controls.parentWidget().parentWidget()
    assert isinstance(scroll, QScrollArea)
    qtbot.wait_until(lambda: scroll.verticalScrollBar().maximum() > 0)
    combo = w.controls.findChild(QComboBox, "samplerCombo") or w.controls.findChildren(QComboBox)[0]
    w.controls.prompt.setFocus()
    before, position = combo.currentIndex(), scroll.verticalScrollBar().value()
    _wheel(combo, -1)
    assert combo.currentIndex() == before  # the hovered control is untouched
    assert scroll.verticalScrollBar().value() > position  # the panel scrolled instead
    combo.setFocus()
    qtbot.wait_until(combo.hasFocus)
    _wheel(combo, -1)
    assert combo.currentIndex() != before  # focused: the wheel is the control's
    w.close()
