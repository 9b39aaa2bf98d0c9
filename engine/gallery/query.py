"""The gallery's search syntax (``SYNTAX`` below, shown as is by ``latentdesk-cli gallery
search --help`` and the window), parsed into a ``Query`` and turned into FTS5 text.

Nothing a person types raises: a term that does not parse as a filter (``seed:abc``,
``size:big``) is taken as words, and FTS5's own syntax (``*``, ``NEAR``, ``AND``, ``^``,
column filters, quotes) never reaches FTS5 unquoted. Filters cannot be negated: ``-model:x``
excludes the words "model" and "x".
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

SORTS = ("newest", "oldest", "prompt", "model")  # the index's orders of search results

# For a person: one term per line, all terms must hold, case does not matter.
SYNTAX = """\
  red car            words of the prompt or negative prompt ("car" also finds "cars")
  "red car"          this phrase: these words, next to each other, in this order
  -blurry  -"a b"    leave out pictures with this word or phrase
  model:NAME         model name contains NAME (model:"my model" with spaces)
  sampler:NAME       sampler name contains NAME (sampler:"DPM++ 2M")
  tool:NAME          written by Latentdesk, A1111, ComfyUI, InvokeAI, Fooocus or NovelAI
  seed:N             this seed
  size:WxH           this size in pixels, as the parameters say (size:512x768)
  after:YYYY-MM-DD   file dated that day or later (local time)
  before:YYYY-MM-DD  file dated before that day
  starred            only starred pictures ("starred" in quotes is a word)
Anything else (an unbalanced quote, *, NEAR) is searched as plain words.
"""

_SIZE = re.compile(r"(\d{1,6})[xX×](\d{1,6})")
_SEED = re.compile(r"-?\d{1,40}")
# A term: an optional "-", an optional "key:", then a quoted or a bare value. An unbalanced
# quote runs to the end of the text.
_TERM = re.compile(r'(-?)(?:([A-Za-z]+):)?(?:"([^"]*)"?|(\S+))')


@dataclass(frozen=True)
class Query:
    words: tuple[str, ...] = ()  # each a prefix of a word in the prompt or negative prompt
    phrases: tuple[str, ...] = ()  # exact phrases
    excluded_words: tuple[str, ...] = ()  # no word of the prompts may start with these
    excluded_phrases: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    samplers: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()
    sizes: tuple[tuple[int, int], ...] = ()
    after: date | None = None  # on this day or later
    before: date | None = None  # before this day
    starred: bool = False


def parse_query(text: str) -> Query:
    """``text`` in the syntax above, as a Query. Never raises."""
    found: dict[str, list[Any]] = {name: [] for name in _LISTS}
    dates: dict[str, date] = {}
    starred = False
    # What SQLite cannot take as text: NUL ends FTS5's strings early, lone surrogates (a
    # broken paste) cannot be encoded.
    text = text.replace("\x00", " ").encode("utf-8", "replace").decode("utf-8")
    for match in _TERM.finditer(text):
        minus, key, quoted, bare = match.groups()
        value = quoted if quoted is not None else bare
        key = (key or "").lower()
        parsed = _filter_value(key, value) if key in _FILTERS and not minus and value else None
        if parsed is not None and key in ("after", "before"):
            # Two of a kind narrow the range: the later "after", the earlier "before".
            old = dates.get(key)
            dates[key] = parsed if old is None else (max if key == "after" else min)(old, parsed)
        elif parsed is not None:
            found[_FILTERS[key]].append(parsed)
        elif quoted is None and not minus and not key and bare.lower() == "starred":
            starred = True
        elif _has_word(value):
            # Not a filter: the whole term, key and all, is text ("seed:abc" finds seed, abc).
            text_value = f"{key}:{value}" if key else value
            list_name = ("excluded_" if minus else "") + ("phrases" if quoted else "words")
            found[list_name].append(text_value)
    lists = {name: tuple(values) for name, values in found.items()}
    return Query(**lists, after=dates.get("after"), before=dates.get("before"), starred=starred)


_LISTS = (
    "words",
    "phrases",
    "excluded_words",
    "excluded_phrases",
    "models",
    "samplers",
    "tools",
    "seeds",
    "sizes",
)
# filter key -> the Query field it fills
_FILTERS = {
    "model": "models",
    "sampler": "samplers",
    "tool": "tools",
    "seed": "seeds",
    "size": "sizes",
    "after": "after",
    "before": "before",
}


def _filter_value(key: str, value: str) -> Any:
    """The filter's value, or None when ``value`` does not fit ``key`` (then it is text)."""
    if key in ("model", "sampler", "tool"):
        return value.strip() or None
    if key == "seed":
        return int(value) if _SEED.fullmatch(value) else None
    if key == "size":
        size = _SIZE.fullmatch(value)
        return (int(size[1]), int(size[2])) if size else None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None


def _has_word(text: str) -> bool:
    """FTS5's unicode61 tokenizer keeps letters and digits; a term without any has no words
    (``*``, ``--``, ``"``) and would only make FTS5 complain."""
    return any(ch.isalnum() for ch in text)


def fts_phrase(text: str, *, prefix: bool) -> str:
    """``text`` as one FTS5 string: quoted, so that FTS5 operators in it (``AND``, ``NEAR``,
    ``*``, ``^``, column filters) are plain words; tokenized like the indexed text."""
    quoted = '"' + text.replace('"', '""') + '"'
    return quoted + "*" if prefix else quoted


def match_expression(query: Query) -> str | None:
    """The FTS5 MATCH string for the query's words and phrases (all must occur), or None."""
    parts = [fts_phrase(word, prefix=True) for word in query.words]
    parts += [fts_phrase(phrase, prefix=False) for phrase in query.phrases]
    return " AND ".join(parts) or None


def exclusion_expression(query: Query) -> str | None:
    """The FTS5 MATCH string for any excluded word (prefix) or phrase (exact), or None."""
    parts = [fts_phrase(word, prefix=True) for word in query.excluded_words]
    parts += [fts_phrase(phrase, prefix=False) for phrase in query.excluded_phrases]
    return " OR ".join(parts) or None


def day_start(day: date) -> float:
    """The epoch seconds at which ``day`` starts in local time (files are dated locally)."""
    return time.mktime(datetime(day.year, day.month, day.day).timetuple())
