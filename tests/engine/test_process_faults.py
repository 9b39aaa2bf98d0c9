"""Processes killed or crowded: SIGKILL mid-batch leaves only complete PNGs (stale temp files
are cleaned on the next start), four CLIs writing one folder give distinct valid files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from engine.output import STALE_AGE, remove_stale_temp_files, save_png
from tests.factories import tiny_sd1_state_dict, write_checkpoint

TEMP = re.compile(r"\.[0-9a-f]{16}\.tmp")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    write_checkpoint(tiny_sd1_state_dict(seed=8), path)
    return path


def _cli(ckpt: Path, out: Path, *extra: str) -> list[str]:
    args = ["txt2img", "--ckpt", str(ckpt), "--outdir", str(out), "--prompt", "a boat"]
    args += ["--H", "64", "--W", "64", "--steps", "1", "--precision", "full", *extra]
    return [sys.executable, "-m", "engine.cli", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}


def _assert_only_complete_pngs(folder: Path, allow_temp: bool = False) -> list[Path]:
    pngs = []
    for path in folder.iterdir():
        if allow_temp and TEMP.fullmatch(path.name):
            continue
        assert path.suffix == ".png" and not path.name.startswith("."), path.name
        with Image.open(path) as image:
            image.load()  # raises on a truncated file
            assert image.size == (64, 64) and "Seed: " in image.info["parameters"]
        pngs.append(path)
    return pngs


def test_sigkill_during_a_batch_leaves_only_complete_pngs(ckpt, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        _cli(ckpt, out, "--n_iter", "500", "--seed", "1"),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 90
        while time.time() < deadline and len(list(out.glob("*.png"))) < 3:
            time.sleep(0.02)
        time.sleep(0.137)  # somewhere inside the next image
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert len(_assert_only_complete_pngs(out, allow_temp=True)) >= 3


def test_writer_killed_mid_write_leaves_a_temp_file_that_the_next_cli_removes(ckpt, tmp_path):
    """Kill a writer while it is inside the write (fsync blocked forever): the orphan is a
    hidden .<hex>.tmp; a later CLI run removes it once it is stale, and nothing else."""
    out = tmp_path / "out"
    out.mkdir()
    script = (
        "import os, sys, numpy as np\n"
        "from engine import output\n"
        "def stuck(fd):\n"
        "    print('writing', flush=True)\n"
        "    import time; time.sleep(600)\n"
        "os.fsync = stuck\n"
        f"output.save_png({str(out)!r}, np.zeros((64, 64, 3), np.uint8), 'x\\nSeed: 1')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env=_env(), stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "writing"
    (orphan,) = [p for p in out.iterdir()]
    assert TEMP.fullmatch(orphan.name)
    assert remove_stale_temp_files(out, min_age=0) == 0  # locked by a living writer: kept
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert orphan.exists() and remove_stale_temp_files(out) == 0  # fresh: kept for now
    keep = {
        "fresh": out / ".0123456789abcdef.tmp",
        "not ours: upper case": out / ".0123456789ABCDEF.tmp",
        "not ours: short": out / ".0123abcd.tmp",
        "not ours: visible": out / "0123456789abcdef.tmp",
        "a folder": out / ".fedcba9876543210.tmp",
    }
    for name, path in keep.items():
        path.mkdir() if name == "a folder" else path.write_bytes(b"x")
        if name != "fresh":
            os.utime(path, (0, 0))
    old = time.time() - STALE_AGE - 5
    os.utime(orphan, (old, old))
    proc = subprocess.run(_cli(ckpt, out, "--seed", "2"), env=_env(), capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert not orphan.exists()
    assert all(path.exists() for path in keep.values())
    assert len(list(out.glob("*.png"))) == 1


def test_cleaning_never_touches_a_file_being_written(tmp_path, monkeypatch):
    """In-process: a writer holds its temp file locked for the whole write."""
    import numpy as np

    seen = []
    real_fsync = os.fsync

    def fsync_and_clean(fd):
        seen.append(remove_stale_temp_files(tmp_path, min_age=0))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_and_clean)
    path = save_png(tmp_path, np.zeros((8, 8, 3), np.uint8), "x")
    assert seen and set(seen) == {0} and path.exists()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_four_clis_into_one_folder_give_distinct_valid_files(ckpt, tmp_path):
    out = tmp_path / "shared"
    procs = [
        subprocess.Popen(
            _cli(ckpt, out, "--n_iter", "2", "--seed", "7", "--json"),  # same seed, same labels
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [proc.communicate(timeout=240) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    reported = [img["path"] for stdout, _ in outputs for img in json.loads(stdout)["images"]]
    files = _assert_only_complete_pngs(out)
    assert len(reported) == len(set(reported)) == len(files) == 8
    assert {str(p) for p in files} == set(reported)
