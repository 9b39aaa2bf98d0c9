"""Turning what a file says into typed values, trusting nothing: every reader goes through
these, so a wrong type, NaN, a 5,000-digit number or a deeply nested JSON gives None."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping

MAX_JSON_CHARS = 16 * 1024 * 1024  # the PNG reader's per-chunk limit
MAX_RAW_TEXT = 256 * 1024  # kept in RecoveredParameters.text
MAX_SETTINGS = 200  # entries kept in RecoveredParameters.settings
MAX_SETTING_CHARS = 4000  # one setting value

_INT_RE = re.compile(r"\s*[+-]?\d{1,40}\s*")


def as_int(value: object) -> int | None:
    """An int from an int, an integral float or a decimal string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value == int(value) else None
    if isinstance(value, str) and _INT_RE.fullmatch(value):
        return int(value)
    if isinstance(value, str):
        number = as_float(value)
        return as_int(number) if number is not None else None
    return None


def as_float(value: object) -> float | None:
    """A finite float from a number or a numeric string (at most 40 characters)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            return None
    elif isinstance(value, str) and len(value) <= 40:
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def as_text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def load_json(text: str | None) -> object:
    """The JSON value of ``text``, or None when it is missing, too long or not JSON."""
    if text is None or len(text) > MAX_JSON_CHARS:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting thousands deep
        return None


def load_json_object(text: str | None) -> dict | None:
    value = load_json(text)
    return value if isinstance(value, dict) else None


def bounded(text: str | None) -> str | None:
    return None if text is None else text[:MAX_RAW_TEXT]


def settings_of(values: Mapping[object, object], skip: Iterable[str] = ()) -> dict[str, str]:
    """The other entries of a parsed JSON object as strings, for ``settings``: bounded in
    number and length, so a hostile file cannot make the record huge."""
    skipped = set(skip)
    settings: dict[str, str] = {}
    for key, value in values.items():
        if len(settings) >= MAX_SETTINGS:
            break
        if not isinstance(key, str) or key in skipped or value is None:
            continue
        settings[key[:200]] = setting_text(value)
    return settings


def setting_text(value: object) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            text = "(not shown: nested too deeply)"
    return text[:MAX_SETTING_CHARS]
