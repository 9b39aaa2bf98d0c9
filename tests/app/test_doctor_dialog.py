"""Help ▸ System report: the doctor's report in a dialog, made off the GUI thread, copyable."""

from __future__ import annotations

import threading
import time

from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QApplication

from app.doctor_dialog import SystemReportDialog
from app.services import Services
from app.settings import Settings
from app.window import MainWindow
from tests.app.fake_engine import FakeEngine


def test_the_report_is_made_off_the_gui_thread_and_copied(qtbot):
    gui = threading.get_ident()
    made_on = []
    release = threading.Event()

    def slow_report() -> str:
        made_on.append(threading.get_ident())
        release.wait(5)
        return "Latentdesk 0.1.0 system report\nNo problems found."

    dialog = SystemReportDialog(slow_report)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.text.toPlainText() == "Checking this machine…"  # the window stays live
    assert not dialog.copy_button.isEnabled()
    release.set()
    qtbot.wait_until(lambda: dialog.ready, timeout=5000)
    assert made_on and made_on[0] != gui
    assert dialog.text.toPlainText().endswith("No problems found.")
    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == dialog.text.toPlainText()
    assert dialog.copy_button.text() == "Copied"


def test_a_failing_report_is_shown_not_hung(qtbot):
    def broken() -> str:
        raise OSError("disk on fire")

    dialog = SystemReportDialog(broken)
    qtbot.addWidget(dialog)
    qtbot.wait_until(lambda: dialog.ready, timeout=5000)
    assert dialog.text.toPlainText() == "The system report failed: OSError: disk on fire"


def test_the_help_menu_shows_the_real_report(qtbot, tmp_path):
    window = MainWindow(
        Settings(), tmp_path / "gallery", Services(lambda: FakeEngine()), tmp_path / "s.json"
    )
    qtbot.addWidget(window)
    window.show()
    (action,) = [a for a in window.findChildren(QAction) if a.text() == "&System report…"]
    start = time.perf_counter()
    action.trigger()
    assert time.perf_counter() - start < 0.1  # the GUI thread only opens the dialog
    dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, SystemReportDialog))
    qtbot.wait_until(lambda: dialog.ready, timeout=30000)
    text = dialog.text.toPlainText()
    assert text.startswith("Latentdesk ") and "Python" in text and "Devices:" in text
    assert str(tmp_path / "gallery") in text  # the window's own gallery folder is checked
    dialog.close()
    window.close()
