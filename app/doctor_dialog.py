"""Help ▸ System report: the doctor's report (as `latentdesk-cli doctor` prints it) in a window,
with a button that copies it for a bug report.

Making the report takes a second or more (torch, a CPU timing on first use, ``ldd``), so it runs
on a plain thread and the dialog polls for the result: no Qt object crosses threads, and a
dialog closed early simply never looks again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.widgets import named

POLL_MS = 50


def system_report_text(output_dir: Path | None = None) -> str:
    """The report for this machine and this window's gallery folder. Slow: not on the GUI
    thread."""
    from engine.doctor import build_report
    from engine.doctor_text import format_report

    return format_report(build_report(output_dir=output_dir))


class SystemReportDialog(QDialog):
    def __init__(self, make_report: Callable[[], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("systemReportDialog")
        self.setWindowTitle("System report")
        self.resize(900, 600)
        self.text = named(QPlainTextEdit("Checking this machine…"), "systemReportText")
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = named(QPushButton("Copy"), "copyReportButton")
        self.copy_button.setEnabled(False)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.copy_button.clicked.connect(self.copy_report)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self._future: Future[str] = Future()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._poll)
        self._timer.start(POLL_MS)
        threading.Thread(
            target=_fill, args=(self._future, make_report), name="latentdesk-report", daemon=True
        ).start()

    @property
    def ready(self) -> bool:
        return self.copy_button.isEnabled()

    def copy_report(self) -> None:
        QGuiApplication.clipboard().setText(self.text.toPlainText())
        self.copy_button.setText("Copied")

    def _poll(self) -> None:
        if not self._future.done():
            return
        self._timer.stop()
        self.text.setPlainText(self._future.result())
        self.copy_button.setEnabled(True)


def _fill(future: Future[str], make_report: Callable[[], str]) -> None:
    try:
        future.set_result(make_report())
    except Exception as e:  # noqa: BLE001 - shown in the dialog, which must not hang
        future.set_result(f"The system report failed: {type(e).__name__}: {e}")


def open_system_report(parent: QWidget, output_dir: Path | None = None) -> SystemReportDialog:
    """Show the report beside the window (not modal: the person may keep working)."""
    dialog = SystemReportDialog(lambda: system_report_text(output_dir), parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog
