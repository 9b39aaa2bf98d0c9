"""The prompt text field's own behaviour: syntax colours, Ctrl+Up/Down weights, tooltips on
names the library does not know, and inserting text from the LoRA and embedding browser.

``app.controls.PromptEdit`` builds on this; the text logic lives in ``app.prompt_weight``,
``app.prompt_spans`` and ``app.extra_networks`` (no widgets there).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, Qt, Signal
from PySide6.QtGui import QFocusEvent, QHelpEvent, QKeyEvent, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QToolTip, QWidget

from app.extra_networks import insert_into
from app.prompt_highlighter import PromptHighlighter
from app.prompt_spans import KnownNetworks
from app.prompt_weight import change_weight, minimal_change
from app.signals import emit
from app.text_positions import from_utf16, to_utf16


class PromptTextEdit(QPlainTextEdit):
    focused = Signal()  # the browser inserts into the prompt field that had the focus last

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.highlighter = PromptHighlighter(self.document(), self.palette())
        self.textChanged.connect(self._describe_problems)

    def set_known(self, known: KnownNetworks) -> None:
        self.highlighter.set_known(known)
        self._describe_problems()

    # -- editing ----------------------------------------------------------------------------

    def change_weight(self, up: bool) -> bool:
        """Ctrl+Up / Ctrl+Down: the weight of the selection or the words under the cursor."""
        text = self.toPlainText()
        cursor = self.textCursor()
        start = from_utf16(text, cursor.selectionStart())
        end = from_utf16(text, cursor.selectionEnd())
        edit = change_weight(text, start, end, up)
        if edit is None:
            return False
        self.replace_text(edit.text, edit.start, edit.end)
        return True

    def insert_snippet(self, snippet: str) -> None:
        """Put ``snippet`` at the cursor as a comma-separated part of the prompt."""
        text = self.toPlainText()
        cursor = from_utf16(text, self.textCursor().position())
        new, after = insert_into(text, cursor, snippet)
        self.replace_text(new, after, after)

    def replace_text(self, new: str, start: int, end: int) -> None:
        """Make the text ``new`` by replacing only what differs, in one undo step, then select
        ``start:end`` (Python indexes in ``new``)."""
        old = self.toPlainText()
        first, last, replacement = minimal_change(old, new)
        cursor = self.textCursor()
        cursor.beginEditBlock()
        cursor.setPosition(to_utf16(old, first))
        cursor.setPosition(to_utf16(old, last), QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(replacement)
        cursor.endEditBlock()
        cursor.setPosition(to_utf16(new, start))
        cursor.setPosition(to_utf16(new, end), QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)

    # -- Qt events --------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt name)
        arrow = event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down)
        control = event.modifiers() & Qt.KeyboardModifier.ControlModifier
        if arrow and control and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.change_weight(event.key() == Qt.Key.Key_Up)
            event.accept()  # also when nothing was weighed: Ctrl+Up must not scroll instead
            return
        super().keyPressEvent(event)

    def focusInEvent(self, event: QFocusEvent) -> None:  # noqa: N802 (Qt name)
        emit(self.focused)
        super().focusInEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            self._show_tip(event)
            return True
        if event.type() == QEvent.Type.PaletteChange:
            self.highlighter.set_palette(self.palette())
        return super().event(event)

    def tip_at(self, point: QPoint) -> str:
        """What the highlighted span under ``point`` (viewport coordinates) says, or ""."""
        position = self.cursorForPosition(point).position()
        span = self.highlighter.span_at(from_utf16(self.toPlainText(), position))
        return span.tip if span is not None else ""

    def _show_tip(self, event: QHelpEvent) -> None:
        tip = self.tip_at(self.viewport().mapFromGlobal(event.globalPos())) or self.toolTip()
        if tip:
            QToolTip.showText(event.globalPos(), tip, self)
        else:
            QToolTip.hideText()
            event.ignore()

    def _describe_problems(self) -> None:
        """Screen readers do not see wavy underlines: the problems go in the description."""
        self.setAccessibleDescription("\n".join(self.highlighter.problems()))
