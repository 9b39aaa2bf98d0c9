"""The gallery browser's rows: the index's pictures for one search, fetched a page at a time.

The count comes first (the scroll range); records come in pages of ``PAGE_SIZE`` when a row of
the page is first asked for (the view asks only for rows it paints), and only the pages used
last are kept. A page query of the read-only index takes a few milliseconds at 10,000 pictures,
so it runs on the GUI thread. ``refresh`` (the index changed) keeps the rows the view has, so
the scroll position stays where the person left it.

Pages are kept as flat tuples of strings and numbers, which Python's cycle collector stops
tracking: records of ``Path``s and dataclasses kept for a while would be promoted to its oldest
generation, and scrolling through 10,000 of them set off full collections of the whole process
(25-70 ms pauses measured in the scroll test).
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Protocol, TypeVar

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)

from app.signals import emit
from app.thumbnails import ThumbnailCache
from engine.errors import EngineError
from engine.gallery.index import IndexedPicture

PAGE_SIZE = 200
MAX_PAGES = 12  # 2,400 records at most: a few screens around every place visited lately
PICTURE_ROLE = Qt.ItemDataRole.UserRole + 1  # the IndexedPicture (made on request)
STARRED_ROLE = Qt.ItemDataRole.UserRole + 2  # bool: what the delegate paints, without a record
READ_ERRORS = (sqlite3.Error, OSError, EngineError)

Index = QModelIndex | QPersistentModelIndex
T = TypeVar("T")
Row = tuple[object, ...]  # an IndexedPicture's fields in order, paths as str

_FIELDS = tuple(f.name for f in fields(IndexedPicture))
_PATHS = frozenset({"path", "folder"})
_STARRED = _FIELDS.index("starred")


def flat(picture: IndexedPicture) -> Row:
    return tuple(
        str(value) if name in _PATHS else value
        for name, value in zip(_FIELDS, (getattr(picture, n) for n in _FIELDS), strict=True)
    )


def unflat(row: Row) -> IndexedPicture:
    values = {n: Path(str(v)) if n in _PATHS else v for n, v in zip(_FIELDS, row, strict=True)}
    return IndexedPicture(**values)  # type: ignore[arg-type]


class PictureReader(Protocol):
    """What the grid needs of ``engine.gallery.index.GalleryIndex`` (opened read-only)."""

    def search(
        self, query: str = "", *, sort: str = "newest", limit: int = 200, offset: int = 0
    ) -> list[IndexedPicture]: ...

    def count(self, query: str = "") -> int: ...


class GalleryGridModel(QAbstractListModel):
    failed = Signal(str)  # the index could not be read: a message for the status line

    def __init__(
        self,
        reader: Callable[[], PictureReader],
        thumbnails: ThumbnailCache,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._reader = reader  # asked each time: the service may reopen a rebuilt database
        self.thumbnails = thumbnails
        self.query = ""
        self.order = "newest"  # one of engine.gallery.index.SORTS
        self._count = 0
        self._pages: OrderedDict[int, list[Row]] = OrderedDict()  # by last use
        self._rows: dict[str, int] = {}  # rows of the pages held, by path
        self.pages_fetched = 0  # tests and the status line: pages read since the last search
        thumbnails.ready.connect(self._thumbnail_ready)

    # -- the search ---------------------------------------------------------------------------

    def set_search(self, query: str, sort: str) -> None:
        """Show the pictures matching ``query`` in ``sort`` order, from the first."""
        self.beginResetModel()
        self.query, self.order = query, sort
        self._drop_pages()
        self.pages_fetched = 0
        self._count = self._safe(lambda r: r.count(self.query), 0)
        self.endResetModel()

    def refresh(self) -> None:
        """The index changed: count again and forget the pages, keeping the view's rows (a
        reset would scroll the view back to the top)."""
        new = self._safe(lambda r: r.count(self.query), self._count)
        old = self._count
        self._drop_pages()
        if new > old:
            self.beginInsertRows(QModelIndex(), old, new - 1)
            self._count = new
            self.endInsertRows()
        elif new < old:
            self.beginRemoveRows(QModelIndex(), new, old - 1)
            self._count = new
            self.endRemoveRows()
        if new:
            emit(self.dataChanged, self.index(0), self.index(new - 1))

    # -- rows ---------------------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 (Qt API)
        return 0 if parent.isValid() else self._count

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        row = self._row(index.row()) if index.isValid() else None
        if row is None:
            return None
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.thumbnail(str(row[0]), row[2], row[3])  # type: ignore[arg-type]
        if role == STARRED_ROLE:
            return row[_STARRED]
        if role == PICTURE_ROLE:
            return unflat(row)
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            return _describe(unflat(row))
        return None

    def picture(self, row: int) -> IndexedPicture | None:
        found = self._row(row)
        return None if found is None else unflat(found)

    def row_of(self, path: Path) -> int | None:
        """The row of ``path`` if its page is held (the ones the person looked at lately)."""
        return self._rows.get(str(path))

    def set_starred_locally(self, path: Path, starred: bool) -> None:
        """Show a star at once; the index is written on the service's thread meanwhile."""
        row = self.row_of(path)
        if row is None:
            return
        page = self._pages[row // PAGE_SIZE]
        at = row % PAGE_SIZE
        page[at] = (*page[at][:_STARRED], starred, *page[at][_STARRED + 1 :])
        emit(self.dataChanged, self.index(row), self.index(row))

    def _row(self, row: int) -> Row | None:
        if not 0 <= row < self._count:
            return None
        page_no, at = divmod(row, PAGE_SIZE)
        page = self._pages.get(page_no)
        if page is None:
            page = self._fetch(page_no)
            # The page after (or before) is read in a later pass of the event loop, so a
            # steady scroll finds it ready and never pays for a query and a paint at once.
            QTimer.singleShot(0, self, lambda: self._prefetch(page_no + 1))
            QTimer.singleShot(0, self, lambda: self._prefetch(page_no - 1))
        else:
            self._pages.move_to_end(page_no)
        return page[at] if at < len(page) else None

    # -- pages --------------------------------------------------------------------------------

    def _fetch(self, page_no: int) -> list[Row]:
        offset = page_no * PAGE_SIZE
        pictures: list[IndexedPicture] = self._safe(
            lambda r: r.search(self.query, sort=self.order, limit=PAGE_SIZE, offset=offset), []
        )
        page = [flat(picture) for picture in pictures]
        self.pages_fetched += 1
        self._pages[page_no] = page
        for at, row in enumerate(page):
            self._rows[str(row[0])] = offset + at
        while len(self._pages) > MAX_PAGES:
            _, old = self._pages.popitem(last=False)
            for row in old:
                self._rows.pop(str(row[0]), None)
        return page

    def _prefetch(self, page_no: int) -> None:
        if 0 <= page_no * PAGE_SIZE < self._count and page_no not in self._pages:
            self._fetch(page_no)

    def _drop_pages(self) -> None:
        self._pages.clear()
        self._rows.clear()

    def _safe(self, read: Callable[[PictureReader], T], fallback: T) -> T:
        try:
            return read(self._reader())
        except READ_ERRORS as exc:
            # Painting must go on: the grid shows what it has, the status line says why.
            emit(self.failed, f"The gallery index could not be read: {exc}")
            return fallback

    def _thumbnail_ready(self, path: str) -> None:
        row = self._rows.get(path)
        if row is not None:
            index = self.index(row)
            emit(self.dataChanged, index, index, [Qt.ItemDataRole.DecorationRole])


def _describe(picture: IndexedPicture) -> str:
    prompt = picture.prompt.strip() or "(no prompt)"
    if len(prompt) > 300:
        prompt = prompt[:300] + "…"
    starred = "★ " if picture.starred else ""
    return f"{starred}{picture.path.name}\n{prompt}"
