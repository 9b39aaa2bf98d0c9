"""Colours for the prompt fields: emphasis up and down, prompt editing, BREAK, LoRA tags and
embedding names; a wavy underline (and a tooltip) on names the library does not know.

The spans come from ``app.prompt_spans`` over the whole prompt, because a bracket opened on one
line can close on another; each block takes the spans that fall on it. Colours follow the
theme: light or dark is read from the palette the field is drawn with.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import (
    QColor,
    QFont,
    QPalette,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextDocument,
)

from app.prompt_spans import (
    BREAK,
    DOWN,
    EDITING,
    EMBEDDING,
    LORA,
    PROBLEM,
    UP,
    KnownNetworks,
    Span,
    prompt_spans,
)
from app.text_positions import from_utf16, to_utf16

# Text colours with a contrast of at least 4.5 on the theme's Base (#ffffff, #1e1e1e):
# tests/app/test_prompt_highlighter.py measures them.
COLOURS = {
    "light": {
        UP: "#a0410d",  # warm: more weight
        DOWN: "#1d5fa8",  # cool: less weight
        EDITING: "#7a3aa0",
        BREAK: "#1a7a3a",
        LORA: "#0b6e6e",
        EMBEDDING: "#8a5a00",
        PROBLEM: "#c01c28",
    },
    "dark": {
        UP: "#ffab70",
        DOWN: "#8cc4ff",
        EDITING: "#d7a6f5",
        BREAK: "#7fdc95",
        LORA: "#6fd6d6",
        EMBEDDING: "#e8c36a",
        PROBLEM: "#ff7b7b",
    },
}
BOLD = (UP, DOWN, EDITING, BREAK)


def scheme_of(palette: QPalette) -> str:
    return "dark" if palette.color(QPalette.ColorRole.Base).lightness() < 128 else "light"


def span_format(kind: str, scheme: str) -> QTextCharFormat:
    fmt = QTextCharFormat()
    colour = QColor(COLOURS[scheme][kind])
    fmt.setForeground(colour)
    if kind in BOLD:
        fmt.setFontWeight(QFont.Weight.Bold)
    if kind == PROBLEM:
        fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        fmt.setUnderlineColor(colour)
    return fmt


class PromptHighlighter(QSyntaxHighlighter):
    def __init__(self, document: QTextDocument, palette: QPalette) -> None:
        super().__init__(document)
        self._known = KnownNetworks()
        self._scheme = scheme_of(palette)
        self._formats = {k: span_format(k, self._scheme) for k in COLOURS[self._scheme]}
        self._text: str | None = None
        self._spans: list[Span] = []
        self._applied: dict[int, tuple[tuple[int, int, str], ...]] = {}  # block -> drawn spans
        self._fix_timer = QTimer(self, singleShot=True, interval=0)
        self._fix_timer.timeout.connect(self._fix_other_blocks)

    # -- inputs -----------------------------------------------------------------------------

    def set_known(self, known: KnownNetworks) -> None:
        """The library's names changed: unknown names may now be known, and the other way."""
        self._known = known
        self._text = None
        self.rehighlight()

    def set_palette(self, palette: QPalette) -> None:
        scheme = scheme_of(palette)
        if scheme != self._scheme:
            self._scheme = scheme
            self._formats = {k: span_format(k, scheme) for k in COLOURS[scheme]}
            self.rehighlight()

    # -- queries ----------------------------------------------------------------------------

    def span_at(self, index: int) -> Span | None:
        """The span holding the character at ``index`` (a Python string index)."""
        return next((s for s in self._current_spans() if s.start <= index < s.end), None)

    def problems(self) -> list[str]:
        return [s.tip for s in self._current_spans() if s.kind == PROBLEM]

    # -- Qt ---------------------------------------------------------------------------------

    def highlightBlock(self, text: str) -> None:  # noqa: N802 (Qt name)
        block = self.currentBlock()
        on_block = self._block_spans(block.position(), len(text))
        self._applied[block.blockNumber()] = on_block
        for start, end, kind in on_block:
            first, last = to_utf16(text, start), to_utf16(text, end)
            self.setFormat(first, last - first, self._formats[kind])
        # Checked once the edit is over, not per block: a per-block check of every block made
        # a pasted 60-line prompt take ~0.7 s (lines^2 x length).
        self._fix_timer.start()

    def _current_spans(self) -> list[Span]:
        text = self.document().toPlainText()
        if text != self._text:
            self._text = text
            self._spans = prompt_spans(text, self._known)
        return self._spans

    def _block_spans(self, position: int, length: int) -> tuple[tuple[int, int, str], ...]:
        """The spans on the block at Qt ``position`` holding ``length`` (Python) characters, as
        (start, end, kind) within the block, clipped to it."""
        spans = self._current_spans()
        begin = from_utf16(self._text or "", position)
        return _clip(spans, begin, begin + length)

    def _fix_other_blocks(self) -> None:
        """A change on one line can change another line's colours (a bracket closed there);
        Qt redraws only from the changed line on, so redraw all when any line is out of date.
        One pass, carrying the Python offset from line to line (no per-line position search)."""
        spans = self._current_spans()
        begin = 0
        block = self.document().firstBlock()
        while block.isValid():
            length = len(block.text())
            if self._applied.get(block.blockNumber(), ()) != _clip(spans, begin, begin + length):
                self.rehighlight()  # its highlightBlock calls start one more (quiet) check
                return
            begin += length + 1  # the line and its separator
            block = block.next()


def _clip(spans: list[Span], begin: int, end: int) -> tuple[tuple[int, int, str], ...]:
    """The spans over [begin, end) of the text, as (start, end, kind) relative to ``begin``."""
    return tuple(
        (max(s.start, begin) - begin, min(s.end, end) - begin, s.kind)
        for s in spans
        if s.start < end and begin < s.end
    )
