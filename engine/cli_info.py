"""`latentdesk-cli info FILE... [--json]`: the generation parameters stored in image files.

Reads what A1111, ComfyUI, InvokeAI, Fooocus, NovelAI and Latentdesk write (see
``engine.gallery.read``). Every file is reported; a file that cannot be read or holds no
parameters gets one line on stderr (and an ``error`` entry with --json), and the exit code is
then 1. Never imports torch: reading a few text chunks should take milliseconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.cli_models import EXIT_ERROR
from engine.gallery.recovered import FIELDS, RecoveredParameters

MISSING = "—"
EMPTY = "(empty)"  # the file says "nothing", which is not the same as not saying


def add_info_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="show the generation parameters stored in image files",
        description="Show the prompt, seed, sampler and other parameters that A1111, ComfyUI, "
        "InvokeAI, Fooocus, NovelAI or Latentdesk stored in PNG, JPEG or WebP files.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="image files to read")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object a file")


def run_info(args: argparse.Namespace) -> int:
    from engine.gallery.read import read_metadata

    reports: list[dict[str, object]] = []
    failed = False
    for path in args.files:
        error = _unreadable(path)
        record = read_metadata(path) if error is None else None
        if record is None:
            failed = True
            error = error or "no generation parameters found in it"
            print(f"error: {path}: {error}", file=sys.stderr)
            reports.append({"path": str(path), "error": error})
            continue
        reports.append(report_of(path, record))
        if not args.json:
            print(format_record(path, record), flush=True)
    if args.json:
        print(json.dumps(reports, indent=2, ensure_ascii=False), flush=True)
    return EXIT_ERROR if failed else 0


def report_of(path: Path, record: RecoveredParameters) -> dict[str, object]:
    """The JSON object for one file: path, tool, every field of FIELDS (null when missing),
    strength, missing and notes."""
    report: dict[str, object] = {"path": str(path), "tool": record.tool}
    for name in FIELDS:
        report[name] = getattr(record, name)
    report["strength"] = record.strength
    report["missing"] = list(record.missing)
    report["notes"] = list(record.notes)
    return report


def format_record(path: Path, record: RecoveredParameters) -> str:
    """The text block for one file: a line per field, "—" for what the file does not hold."""
    rows = [("tool", record.tool)]
    rows += [(name, _shown(getattr(record, name))) for name in FIELDS]
    if record.strength is not None:
        rows.append(("strength", _shown(record.strength)))
    rows.append(("missing", ", ".join(record.missing) or "nothing"))
    rows += [("note", note) for note in record.notes]
    width = max(len(name) for name, _ in rows)
    lines = [str(path)]
    for name, value in rows:
        first, *rest = value.split("\n") or [""]
        lines.append(f"  {name:<{width}}  {first}")
        lines += [f"  {'':<{width}}  {line}" for line in rest]
    return "\n".join(lines) + "\n"


def _shown(value: object) -> str:
    if value is None:
        return MISSING
    if value == "":
        return EMPTY
    if isinstance(value, float) and value == int(value) and abs(value) < 1e15:
        return str(int(value))  # 7.0 -> "7", as A1111 writes it
    return str(value)


def _unreadable(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file, or None when it can."""
    try:
        with open(path, "rb") as file:
            file.read(1)
    except FileNotFoundError:
        return "no such file"
    except IsADirectoryError:
        return "a folder, not an image file"
    except OSError as error:
        return f"cannot be read: {error.strerror or error}"
    return None
