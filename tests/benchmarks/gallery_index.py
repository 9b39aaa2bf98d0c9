"""The gallery index over 10,000 pictures: the first index, a re-sync with nothing changed,
opening the index, and searches of a page (200 pictures), each a median over several runs.

    python -m tests.benchmarks.gallery_index [--pictures 10000] [--runs 15] [--dir DIR]

The pictures are tiny PNGs (8x8) carrying varied A1111 parameters (prompts built from a word
list, negative prompts, 8 models, 6 samplers, seeds up to 2**64-1, 5 sizes, dates over a year),
spread over the gallery folder and dated subfolders as A1111 makes them. Reading a real
512x512 PNG's text chunks costs about the same: the reader never decodes pixels. The files
were just written, so the first index runs on a warm page cache. Aims: the first index well
under a minute, a search under 50 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.gallery.index import GalleryIndex
from engine.output import encode_png
from engine.parameters import format_parameters

SUBJECTS = "castle dragon cat portrait city forest robot ship mountain garden knight girl".split()
ADJECTIVES = "red blue golden dark ancient futuristic tiny giant misty neon snowy ruined".split()
STYLES = "oil painting, watercolor, photograph, digital art, concept art, anime, 35mm".split(", ")
EXTRAS = "highly detailed, 8k, trending on artstation, sharp focus, volumetric light".split(", ")
NEGATIVES = ["blurry", "lowres, bad anatomy", "watermark, text", "", "ugly, deformed"]
MODELS = [
    "v1-5-pruned-emaonly",
    "dreamshaper_8",
    "realisticVisionV51",
    "deliberate_v2",
    "anything-v5",
    "revAnimated_v122",
    "epicrealism_natural",
    "majicmixRealistic_v7",
]
SAMPLERS = ["Euler a", "Euler", "DPM++ 2M", "DPM++ 2M SDE", "DDIM", "Heun"]
SIZES = ["512x512", "512x768", "768x512", "640x640", "512x640"]
YEAR = 365 * 86400
NOW = 1_795_000_000  # 2026-11: the pictures span the year before


def write_pictures(folder: Path, count: int) -> None:
    """``count`` PNGs under ``folder`` (a third in dated subfolders), mtimes over a year."""
    rng = random.Random(0)
    image = np.zeros((8, 8, 3), np.uint8)
    for number in range(count):
        prompt = ", ".join(
            [
                f"a {rng.choice(ADJECTIVES)} {rng.choice(SUBJECTS)}",
                rng.choice(STYLES),
                *rng.sample(EXTRAS, rng.randint(0, 3)),
            ]
        )
        seed = rng.randrange(2**64) if number % 50 == 0 else rng.randrange(2**32)
        settings: dict[str, object] = {
            "Steps": rng.choice([20, 25, 30]),
            "Sampler": rng.choice(SAMPLERS),
            "CFG scale": rng.choice([5, 7, 7.5, 9]),
            "Seed": seed,
            "Size": rng.choice(SIZES),
            "Model hash": f"{rng.randrange(16**10):010x}",
            "Model": rng.choice(MODELS),
        }
        text = format_parameters(prompt, rng.choice(NEGATIVES), settings)
        mtime = NOW - YEAR + number * YEAR // count
        day = time.strftime("%Y-%m-%d", time.localtime(mtime))
        place = folder / day if number % 3 == 0 else folder
        place.mkdir(exist_ok=True)
        path = place / f"{number:05}-{seed}.png"
        path.write_bytes(encode_png(image, text))  # no fsync: building, not measuring
        os.utime(path, (mtime, mtime))


def median_ms(action: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median and max milliseconds of ``runs`` calls (after one warm-up call)."""
    action()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def first_index(gallery: Path, db_path: Path) -> tuple[float, int]:
    for leftover in db_path.parent.glob(db_path.name + "*"):
        leftover.unlink()
    with GalleryIndex.open(db_path) as index:
        index.add_folder(gallery)
        report = index.sync()
    return report.seconds, report.added


SEARCHES = [
    ("a word", "castle", "newest"),
    ("a word's start", "cast", "newest"),
    ("two words", "red castle", "newest"),
    ("a phrase", '"golden dragon"', "newest"),
    ("word, -word", "castle -blurry", "newest"),
    ("model:", "model:dreamshaper", "newest"),
    ("seed:", "seed:__SEED__", "newest"),
    ("sampler: + size:", 'sampler:"DPM++ 2M" size:512x768', "newest"),
    ("date range", "after:2026-03-01 before:2026-04-01", "newest"),
    ("starred", "starred", "newest"),
    ("all, newest", "", "newest"),
    ("all, oldest", "", "oldest"),
    ("all, by prompt", "", "prompt"),
    ("all, by model", "", "model"),
    ("word, by prompt", "castle", "prompt"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15, help="runs per search")
    parser.add_argument("--index-runs", type=int, default=3, help="first indexes to time")
    parser.add_argument("--dir", type=Path, help="build here (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gallery-bench-", dir=args.dir) as tmp:
        gallery, db_path = Path(tmp) / "gallery", Path(tmp) / "data" / "gallery.sqlite3"
        gallery.mkdir()
        start = time.perf_counter()
        write_pictures(gallery, args.pictures)
        print(f"wrote {args.pictures} pictures in {time.perf_counter() - start:.1f} s")

        firsts = [first_index(gallery, db_path) for _ in range(args.index_runs)]
        assert all(added == args.pictures for _, added in firsts), firsts
        index_seconds = [seconds for seconds, _ in firsts]
        size_mb = db_path.stat().st_size / 1e6
        rows: list[tuple[str, str, float, float]] = []
        with GalleryIndex.open(db_path) as index:
            resync = [index.sync().seconds * 1000 for _ in range(args.runs)]
            rows.append(("re-sync, nothing changed", "", statistics.median(resync), max(resync)))
            seed = index.search("", limit=1, offset=args.pictures // 2)[0].seed
            for picture in index.search("castle", limit=300):
                index.set_starred(picture.path, True)
        rows.append(("open (with integrity check)", "", *median_ms(lambda: open_close(db_path), 5)))

        with GalleryIndex.open(db_path, readonly=True) as reader:
            for name, query, sort in SEARCHES:
                query = query.replace("__SEED__", str(seed))
                matches = reader.count(query)
                page = median_ms(lambda q=query, s=sort: reader.search(q, sort=s), args.runs)
                rows.append((f"search: {name}", f"{matches} found", *page))
            rows.append(("search: deep page", "offset 5000", *deep_page(reader, args.runs)))
            rows.append(
                ("count: a word", "castle", *median_ms(lambda: reader.count("castle"), args.runs))
            )

        first = statistics.median(index_seconds)
        print(
            f"first index of {args.pictures} pictures: median {first:.2f} s"
            f" (max {max(index_seconds):.2f} s over {args.index_runs} runs);"
            f" database {size_mb:.1f} MB"
        )
        print(f"{'operation':34} {'':14} {'median ms':>10} {'max ms':>8}")
        for name, note, median, worst in rows:
            print(f"{name:34} {note:14} {median:10.2f} {worst:8.2f}")
        searches = [median for name, _, median, _ in rows if name.startswith("search")]
        ok = first < 60 and max(searches) < 50
        print(("PASS" if ok else "FAIL") + ": first index under 60 s, every search under 50 ms")
        return 0 if ok else 1


def open_close(db_path: Path) -> None:
    GalleryIndex.open(db_path).close()


def deep_page(reader: GalleryIndex, runs: int) -> tuple[float, float]:
    return median_ms(lambda: reader.search("", limit=200, offset=5000), runs)


if __name__ == "__main__":
    sys.exit(main())
