"""`latentdesk-cli gallery search QUERY`: find pictures by their prompt and settings.

The search uses the app's gallery index (``engine.gallery.index``): it is first brought up to
date with the app's gallery folder (the window's setting, which it adds to the index as the
window does) and the folders added in the window, reading only the files that changed.
``--dir`` outside those folders reads that folder into a temporary index for this search only:
the person's index is not changed by it. Qt-free and torch-free.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cli_models import EXIT_ERROR, EXIT_INTERRUPTED
from engine.cli_progress import StatusLine
from engine.errors import EngineError
from engine.gallery.query import SORTS, SYNTAX

if TYPE_CHECKING:
    from engine.gallery.index import GalleryIndex, IndexedPicture


SETTINGS_FILE = "settings.json"  # app/settings.py: the window's settings, gallery_dir among them
PROMPT_WIDTH = 100  # characters of the prompt shown per match; --json has all of it

_DIR_HELP = """
--dir DIR searches only the pictures in DIR and its subfolders. Inside the app's gallery or a
folder added in the window, the index is used; any other folder is read for this search
only and is NOT added to the index (add folders in the window's gallery to keep them).
Put -- before a query that starts with "-": gallery search -- -blurry cat
"""


def add_gallery_parser(sub: argparse._SubParsersAction) -> None:
    gallery = sub.add_parser("gallery", help="search the pictures in the gallery")
    actions = gallery.add_subparsers(dest="gallery_action", required=True, metavar="ACTION")
    search = actions.add_parser(
        "search",
        help="find pictures by prompt, model, seed, sampler, size, date",
        description="Find pictures in the gallery by the parameters they were made with.",
        epilog="QUERY (all terms must hold):\n" + SYNTAX + _DIR_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    search.add_argument("query", nargs="*", metavar="QUERY", help="what to find (see below)")
    search.add_argument("--dir", type=Path, default=None, help="search only this folder")
    search.add_argument("--json", action="store_true", help="print a JSON list on stdout")
    search.add_argument(
        "--limit", type=_positive, default=50, metavar="N", help="at most N matches (50)"
    )
    search.add_argument("--sort", choices=SORTS, default="newest", help="order (newest first)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def run_gallery(args: argparse.Namespace, cancel: threading.Event) -> int:
    """``gallery search``. Errors print one line and exit 1; Ctrl+C while indexing exits 130."""
    from engine.gallery.index import GalleryIndex, default_index_path

    folder = None
    if args.dir is not None:
        folder = Path(os.path.abspath(args.dir.expanduser()))
        if not folder.is_dir():
            print(
                f"error: {args.dir} is not a folder. Pass --dir an existing folder.",
                file=sys.stderr,
            )
            return EXIT_ERROR
    try:
        with GalleryIndex.open(default_index_path()) as index:
            if index.notice:
                print(f"note: {index.notice}", file=sys.stderr)
            index.add_folder(gallery_folder())  # as the window does: the app's gallery
            if folder is None or _inside_any(folder, index.folders()):
                return _search(index, args, folder, cancel)
            # Not an indexed folder: read it for this search only, into memory.
            with GalleryIndex.in_memory() as temporary:
                temporary.add_folder(folder)
                return _search(temporary, args, folder, cancel)
    except EngineError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR


def _search(
    index: GalleryIndex, args: argparse.Namespace, folder: Path | None, cancel: threading.Event
) -> int:
    if not _sync(index, folder, cancel):
        return EXIT_INTERRUPTED
    query = " ".join(args.query)
    found = index.search(query, sort=args.sort, limit=args.limit, folder=folder)
    total = index.count(query, folder=folder)
    try:
        _print(found, total, as_json=args.json)
    except BrokenPipeError:
        # `gallery search | head` stopped reading: not an error. Point stdout at nothing so
        # that the interpreter's last flush does not complain about the closed pipe either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _inside_any(folder: Path, roots: list[Path]) -> bool:
    return any(folder == root or root in folder.parents for root in roots)


def _sync(index: GalleryIndex, folder: Path | None, cancel: threading.Event) -> bool:
    """Update the index (with --dir, only what covers that folder); False when Ctrl+C
    stopped it."""
    line = StatusLine(sys.stderr, min_interval=0.1)

    def progress(done: int, total: int) -> None:
        line.show(f"Reading new pictures: {done}/{total}", force=done == total)

    roots = None if folder is None else [r for r in index.folders() if _holds(r, folder)]
    report = index.sync(roots, cancel=cancel, progress=progress)
    line.clear()
    return not report.cancelled


def _holds(root: Path, folder: Path) -> bool:
    """Whether ``root``'s sync covers ``folder``: it holds it, or it lies inside it."""
    return root == folder or root in folder.parents or folder in root.parents


def gallery_folder() -> Path:
    """The app's gallery folder: the window's setting (``gallery_dir`` in the settings file,
    see app/settings.py) or the default in the user's pictures folder."""
    import platformdirs

    from engine.folder_check import APP_NAME, app_folders

    chosen = ""
    try:
        path = Path(platformdirs.user_config_dir(APP_NAME)) / SETTINGS_FILE
        settings = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(settings, dict) and isinstance(settings.get("gallery_dir"), str):
            chosen = settings["gallery_dir"]
    except (OSError, ValueError):
        pass  # no settings yet, or broken ones (the window will say so): the default
    return Path(chosen).expanduser() if chosen else app_folders()["output"]


def _print(found: list[IndexedPicture], total: int, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([_as_dict(picture) for picture in found], indent=2, ensure_ascii=False))
        return
    for picture in found:
        print(_line(picture))
        prompt = " ".join(picture.prompt.split())
        if len(prompt) > PROMPT_WIDTH:
            prompt = prompt[: PROMPT_WIDTH - 1] + "…"
        print(f"    {prompt}" if prompt else "    (no prompt)")
    shown = f"{len(found)} of {total}" if len(found) < total else f"{total}"
    print(f"{shown} matching picture{'s' if total != 1 else ''}.")


def _line(picture: IndexedPicture) -> str:
    date = datetime.fromtimestamp(picture.mtime).strftime("%Y-%m-%d %H:%M")
    size = f"{picture.width}x{picture.height}" if picture.width else "?x?"
    seed = f"seed {picture.seed}" if picture.seed is not None else "no seed"
    star = "* " if picture.starred else ""
    return f"{star}{picture.path}  {date}  {size}  {seed}  {picture.model or 'model unknown'}"


def _as_dict(picture: IndexedPicture) -> dict[str, Any]:
    return {
        "path": str(picture.path),
        "folder": str(picture.folder),
        "date": datetime.fromtimestamp(picture.mtime).astimezone().isoformat(timespec="seconds"),
        "size_bytes": picture.size_bytes,
        "width": picture.width,
        "height": picture.height,
        "tool": picture.tool,
        "prompt": picture.prompt,
        "negative_prompt": picture.negative_prompt,
        "model": picture.model,
        "seed": picture.seed,
        "sampler": picture.sampler,
        "schedule": picture.schedule,
        "steps": picture.steps,
        "cfg_scale": picture.cfg_scale,
        "starred": picture.starred,
    }
