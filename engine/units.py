"""Sizes and durations as a person reads them, for the CLI, the downloader and the window alike.

No torch, no Qt: importing it costs nothing.
"""

from __future__ import annotations


def human_size(size: float) -> str:
    """Decimal units with three significant digits, as the Hugging Face hub and file managers
    show sizes: 4.27 GB, 43.6 MB, 812 MB, 999 bytes."""
    if size < 1000:
        return f"{size:.0f} bytes"
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if size < 999.5 or unit == "TB":
            break
    decimals = 2 if size < 9.995 else 1 if size < 99.95 else 0
    return f"{size:.{decimals}f} {unit}"


def human_duration(seconds: float) -> str:
    """ "<1 s", "42 s", "1 min 27 s", "2 h 5 min"."""
    if 0 < seconds < 0.5:  # rounding would say "0 s left" of work still going on
        return "<1 s"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
