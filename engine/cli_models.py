"""`latentdesk-cli models list|download|add-folder|remove-folder`, and how `--ckpt` finds a model.

Nothing here imports torch: listing the library, resolving a model name and downloading need no
model code, so a mistyped name is reported at once instead of after the seconds torch takes.

``models list --json`` prints one object::

    {"models": [{"name", "path", "kind", "family", "inpainting", "size", "source",
                 "short_hash", "problem", "usable"}, ...],
     "skipped": [{"path", "reason"}, ...]}

``kind`` is one of checkpoint, lora, vae, embedding, controlnet, unknown; ``family`` sd1, sd2,
sdxl or null; ``size`` in bytes; ``short_hash`` A1111's 10-hex model hash or null while unknown;
``problem`` is "" for a file this engine can use; ``usable`` is true for the checkpoints
``--ckpt`` accepts. ``skipped`` holds the folders and files the scan could not read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from engine.cli_progress import StatusLine
from engine.errors import Cancelled, EngineError, NoModelError
from engine.library import LibraryEntry, LibraryError, ModelLibrary, ScanResult
from engine.library.classify import FAMILY_NAMES
from engine.units import human_duration, human_size

if TYPE_CHECKING:
    from engine.library.download import DownloadProgress, DownloadSpec

EXIT_ERROR, EXIT_INTERRUPTED = 1, 130  # 130 = 128 + SIGINT: what shells report for Ctrl+C
DEFAULT_PRESET = "stable-diffusion-1.5"
NO_MODEL_ADVICE = (
    "No Stable Diffusion model found on this computer: get one with "
    f"`latentdesk-cli models download {DEFAULT_PRESET}`, or pass --ckpt PATH."
)
USING_DEMO = (
    "No model given and none installed: using the built-in demo (shapes) — real pictures need "
    f"a real checkpoint: latentdesk-cli models download {DEFAULT_PRESET}"
)

KIND_TITLES = {
    "checkpoint": "Checkpoints",
    "lora": "LoRAs",
    "vae": "VAEs",
    "embedding": "Embeddings",
    "controlnet": "ControlNets",
    "unknown": "Other files",
}
FAMILY_TITLES: dict[str | None, str] = {None: "family unknown"}
FAMILY_TITLES.update(FAMILY_NAMES)


def add_models_parser(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="list, download and find models")
    actions = models.add_subparsers(dest="models_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the models found on this computer")
    listing.add_argument("--json", action="store_true", help="print JSON on stdout")
    download = actions.add_parser(
        "download",
        help=f"download a preset ({DEFAULT_PRESET}) or any file of a Hugging Face repository",
    )
    download.add_argument("what", metavar="PRESET|REPO_ID", help=f"e.g. {DEFAULT_PRESET}")
    download.add_argument("filename", nargs="?", metavar="FILENAME", help="file in the repo")
    download.add_argument("--revision", default=None, help="branch, tag or commit (main)")
    download.add_argument("--sha256", default=None, help="expected sha256 of the file")
    download.add_argument(
        "--dir", type=Path, default=None, help="where to save it (default: the app's models folder)"
    )
    for action, verb in (("add-folder", "look for"), ("remove-folder", "stop looking for")):
        folder = actions.add_parser(action, help=f"{verb} models in a folder (app and CLI)")
        folder.add_argument("folder", type=Path, metavar="DIR")


def run_models(args: argparse.Namespace, cancel: threading.Event) -> int:
    """One ``models`` action. Errors print one line and exit 1; a cancelled download exits 130."""
    library = open_library()
    try:
        if args.models_action == "list":
            print_listing(library.scan(), as_json=args.json)
        elif args.models_action == "download":
            _download(library, args, cancel)
        else:
            _change_folders(library, args.models_action, args.folder)
    except (Cancelled, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    except EngineError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # `models list | head` stopped reading: not an error. Point stdout at nothing so that
        # the interpreter's last flush does not complain about the closed pipe either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def open_library() -> ModelLibrary:
    """The library the app uses too. Settings it could not read are said once, on stderr."""
    library = ModelLibrary()
    if library.config.warning:
        print(f"note: {library.config.warning}", file=sys.stderr)
    return library


# --- which model --ckpt means ------------------------------------------------------------------


def checkpoint_for(ckpt: str | None, library: ModelLibrary) -> Path:
    """The file ``--ckpt`` names: a path, or the name of a model in the library (``demo``:
    the built-in demo). Without ``--ckpt``: the model used last, else the only usable one,
    else the built-in demo (said on stderr)."""
    if ckpt is None:
        return _default_checkpoint(library)
    path = Path(ckpt).expanduser()
    if path.exists():  # a path wins over a name: the loader explains what is wrong with it
        return path
    entry = library.find(ckpt)
    if entry is None:
        raise EngineError(
            f"{ckpt}: no such file, and no model of that name was found "
            "(`latentdesk-cli models list` shows the models on this computer)."
        )
    if not entry.usable:
        raise EngineError(f"{entry.name} ({entry.path}) cannot be used: {unusable_reason(entry)}")
    return Path(entry.path)


def _default_checkpoint(library: ModelLibrary) -> Path:
    last = library.last_model  # "" when none
    if last and Path(last).exists():
        return Path(last)
    entries = library.scan().entries
    usable = [entry for entry in entries if entry.usable and not entry.builtin]
    demo = [entry for entry in entries if entry.usable and entry.builtin]
    if not usable and demo:
        print(USING_DEMO, file=sys.stderr)
        return Path(demo[0].path)
    if not usable:
        raise NoModelError(NO_MODEL_ADVICE)
    if len(usable) > 1:
        names = sorted(entry.name for entry in usable)
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise EngineError(f"{len(usable)} models found ({shown}): choose one with --ckpt NAME.")
    return Path(usable[0].path)


def remember_model(library: ModelLibrary, path: Path) -> None:
    """Make ``path`` the default for the next run without --ckpt (and the app's next start).
    The built-in demo is not remembered: a model installed later must become the default."""
    if library.is_builtin(path):
        return
    try:
        library.last_model = str(path.absolute())
    except LibraryError as e:  # an unwritable settings folder must not stop the generation
        print(f"note: the model is not remembered for next time: {e}", file=sys.stderr)


def native_size(path: Path) -> int:
    """The size a model was trained at, when its file says (the demo's metadata does); 0 when
    not. Read from the header: no torch."""
    from engine.family import SD1
    from engine.loading.file_metadata import read_metadata

    return read_metadata(path, SD1.latent_channels).native_size if path.is_file() else 0


def unusable_reason(entry: LibraryEntry) -> str:
    """Why ``--ckpt`` refuses an entry: the scanner's own words when it gave some (it does for
    every checkpoint it would not load)."""
    if entry.problem:
        return entry.problem
    if entry.kind != "checkpoint":
        return f"a {entry.kind}, not a whole model"
    return f"{FAMILY_TITLES.get(entry.family, entry.family)}: not supported"


# --- models list -------------------------------------------------------------------------------


def print_listing(result: ScanResult, *, as_json: bool, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if as_json:
        json.dump(listing_json(result), out, indent=2)
        out.write("\n")
    else:
        out.write(listing_text(result))


def listing_json(result: ScanResult) -> dict:
    models = [{**asdict(entry), "usable": entry.usable} for entry in _sorted(result.entries)]
    skipped = [asdict(skipped) for skipped in result.skipped]
    return {"models": models, "skipped": skipped}


def listing_text(result: ScanResult) -> str:
    """A table per kind and family (checkpoints first), unusable files marked with the reason,
    the places and files that could not be read at the end."""
    entries = _sorted(result.entries)
    rows = [_row(entry) for entry in entries]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(4)]
    lines: list[str] = []
    group = None
    for entry, row in zip(entries, rows, strict=True):
        if (entry.kind, entry.family) != group:
            group = (entry.kind, entry.family)
            lines += [""] * bool(lines) + [_group_title(entry)]
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        line = "  " + "  ".join([*cells, entry.path])
        if not entry.usable and entry.kind == "checkpoint":
            line += f"  [not usable: {unusable_reason(entry)}]"
        elif entry.problem:
            line += f"  [{entry.problem}]"
        lines.append(line)
    lines += _skipped_lines(result)
    lines.append(_summary_line(result))
    return "\n".join(lines) + "\n"


def _sorted(entries: Iterable[LibraryEntry]) -> list[LibraryEntry]:
    kinds = list(KIND_TITLES)
    families = [*FAMILY_NAMES, None]  # the families we run first, the unknown last

    def key(entry: LibraryEntry) -> tuple:
        kind = kinds.index(entry.kind) if entry.kind in kinds else len(kinds)
        family = families.index(entry.family) if entry.family in families else len(families)
        return (kind, family, entry.name.casefold(), entry.path)

    return sorted(entries, key=key)


def _group_title(entry: LibraryEntry) -> str:
    kind = KIND_TITLES.get(entry.kind, entry.kind)
    return f"{kind}, {FAMILY_TITLES.get(entry.family, entry.family)}"


def _row(entry: LibraryEntry) -> list[str]:
    name = entry.name + (" (inpainting)" if entry.inpainting else "")
    return [name, human_size(entry.size), entry.source, entry.short_hash or "-"]


def _skipped_lines(result: ScanResult) -> list[str]:
    if not result.skipped:
        return []
    lines = ["", "Skipped (could not be read):"]
    return lines + [f"  {skipped.path}: {skipped.reason}" for skipped in result.skipped]


def _summary_line(result: ScanResult) -> str:
    usable = sum(entry.usable for entry in result.entries)
    found = f"{len(result.entries)} file(s) found, {usable} usable checkpoint(s)"
    if usable and not any(entry.usable and not entry.builtin for entry in result.entries):
        found += (
            " (the built-in demo only: real pictures need a real checkpoint, "
            f"`latentdesk-cli models download {DEFAULT_PRESET}`)"
        )
    if not result.entries:
        found = NO_MODEL_ADVICE
    return f"\n{found} (scan took {result.seconds:.2f} s)"


# --- models download ---------------------------------------------------------------------------


def _download(library: ModelLibrary, args: argparse.Namespace, cancel: threading.Event) -> None:
    # huggingface_hub and its HTTP stack: imported only when downloading.
    from engine.library import remember_short_hash
    from engine.library.download import STAGING_DIR, download

    spec = download_spec(args)
    dest = args.dir.expanduser().absolute() if args.dir is not None else library.models_dir
    print(f"Downloading {spec.repo_id}/{spec.filename} into {dest}", file=sys.stderr)
    shown = ProgressLine(sys.stderr)
    try:
        result = download(spec, dest, on_progress=shown, cancel=cancel)
    except (Cancelled, KeyboardInterrupt):
        shown.close()
        print(
            f"Download cancelled. What arrived is kept in {dest / STAGING_DIR}: run the same "
            "command again to resume it.",
            file=sys.stderr,
        )
        raise
    finally:
        shown.close()
    # The download knows the file's sha256: `models list` shows its hash without reading 4 GB.
    remember_short_hash(result.path, result.short_hash)
    print(f"{result.path}  (hash {result.short_hash})", flush=True)
    if not _is_scanned(library, dest):
        print(
            f"note: {dest} is not a model folder yet: "
            f"`latentdesk-cli models add-folder {dest}` makes the app find it.",
            file=sys.stderr,
        )


def _is_scanned(library: ModelLibrary, folder: Path) -> bool:
    """Whether the library looks in ``folder`` (or a folder above it)."""
    real = Path(folder).resolve()
    return any(real.is_relative_to(place.path.resolve()) for place in library.places())


def download_spec(args: argparse.Namespace) -> DownloadSpec:
    """A preset by name, or REPO_ID FILENAME; --revision and --sha256 refine either."""
    from dataclasses import replace

    from engine.library.download import PRESETS, DownloadSpec

    if args.filename is None:
        spec = PRESETS.get(args.what)
        if spec is None:
            presets = ", ".join(sorted(PRESETS))
            raise EngineError(
                f"{args.what!r} is not a preset ({presets}): "
                "give a Hugging Face repository and a file, e.g. REPO_ID FILENAME."
            )
    else:
        spec = DownloadSpec(repo_id=args.what, filename=args.filename)
    changes = {"revision": args.revision, "sha256": args.sha256}
    return replace(spec, **{k: v for k, v in changes.items() if v is not None})


class ProgressLine:
    """Download progress on stderr: one line rewritten in place on a terminal; in a log (a file
    or a pipe) a plain line every tenth of the file or every half minute, and at the end."""

    LOG_INTERVAL = 30.0  # seconds: a slow or stalled download still shows signs of life

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic):
        self.stream = stream
        # The download reports at most ten times a second: a terminal can show each report.
        self.line = StatusLine(stream, clock=clock)
        self.clock = clock
        self.logged: tuple[int, float] | None = None  # (tenths done, when) of the last line

    def __call__(self, progress: DownloadProgress) -> None:
        text = progress_text(progress)
        if self.line.tty:
            self.line.show(text)
        elif self._worth_a_line(progress):
            self.stream.write(text + "\n")
            self.stream.flush()

    def _worth_a_line(self, progress: DownloadProgress) -> bool:
        tenths = 10 * progress.done // progress.total if progress.total else -1
        now = self.clock()
        last = self.logged
        if last is not None and tenths == last[0] and now - last[1] < self.LOG_INTERVAL:
            return False
        self.logged = (tenths, now)
        return True

    def close(self) -> None:
        self.line.end()  # the last report stays: how much arrived, and how fast


def progress_text(progress: DownloadProgress) -> str:
    """ "1.20 GB of 4.27 GB (28%), 35.2 MB/s, 1 min 27 s left" """
    parts = [human_size(progress.done)]
    if progress.total:
        percent = 100 * progress.done // progress.total
        parts = [f"{human_size(progress.done)} of {human_size(progress.total)} ({percent}%)"]
    if progress.rate:
        parts.append(f"{human_size(progress.rate)}/s")
    if progress.seconds_left is not None and progress.done < (progress.total or 0):
        parts.append(f"{human_duration(progress.seconds_left)} left")
    return ", ".join(parts)


# --- models add-folder / remove-folder ---------------------------------------------------------


def _change_folders(library: ModelLibrary, action: str, folder: Path) -> None:
    """Saved in the library's settings, which the app reads too."""
    if action == "add-folder":
        added = library.add_folder(folder)
        print(f"Added {added}: the app and `latentdesk-cli models list` now look there.")
    elif library.remove_folder(folder):
        print(f"Removed {folder} from the model folders (its files are untouched).")
    else:
        listed = ", ".join(library.config.folders) or "none"
        raise EngineError(f"{folder} is not one of the added folders (those are: {listed}).")
