"""latentdesk-cli: outputs, JSON summary, one-line errors, clean Ctrl+C."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from tests.factories import tiny_sd1_state_dict, write_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    write_checkpoint(tiny_sd1_state_dict(seed=2), path)
    return path


def _args(ckpt, outdir, *extra):
    return [
        "txt2img",
        "--ckpt",
        str(ckpt),
        "--outdir",
        str(outdir),
        "--prompt",
        "a cat, sitting",
        "--H",
        "64",
        "--W",
        "64",
        "--steps",
        "3",
        "--precision",
        "full",
        *extra,
    ]


def test_txt2img_writes_pngs_with_parameters(ckpt, tmp_path, capsys):
    code = main(_args(ckpt, tmp_path / "out", "--seed", "42", "--n_samples", "2", "--json"))
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert [img["seed"] for img in summary["images"]] == [42, 43]
    assert {"load", "encode", "sample", "decode"} <= set(summary["timings"])
    for entry in summary["images"]:
        with Image.open(entry["path"]) as im:
            assert im.size == (64, 64)
            params = im.info["parameters"]
        assert params.startswith("a cat, sitting\n")
        assert f"Seed: {entry['seed']}" in params
    assert len(list((tmp_path / "out").iterdir())) == 2


def test_img2img_and_sampler_flags(ckpt, tmp_path, capsys):
    init = tmp_path / "sketch.png"
    Image.fromarray(np.full((50, 80, 3), 200, np.uint8)).save(init)
    args = _args(ckpt, tmp_path / "out", "--plms", "--seed", "1", "--json")
    args[0] = "img2img"
    code = main([*args, "--init-img", str(init), "--strength", "0.5"])
    assert code == 0
    (entry,) = json.loads(capsys.readouterr().out)["images"]
    params = Image.open(entry["path"]).info["parameters"]
    assert "Sampler: PLMS" in params and "Denoising strength: 0.5" in params


def test_from_file_runs_each_prompt(ckpt, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("first prompt\n\nsecond prompt\n")
    assert main(_args(ckpt, tmp_path / "o", "--from-file", str(prompts), "--json")) == 0
    images = json.loads(capsys.readouterr().out)["images"]
    assert [img["prompt"] for img in images] == ["first prompt", "second prompt"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--H", "100"], "multiple of 8"),
        (["--n_samples", "0"], "Batch size"),
    ],
)
def test_user_errors_print_one_line(ckpt, tmp_path, capsys, extra, message):
    assert main(_args(ckpt, tmp_path, *extra)) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def _run_cli(args, **kw):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        **kw,
    )


def test_missing_and_bad_checkpoints_exit_1_without_traceback(tmp_path):
    garbage = tmp_path / "model.safetensors"
    garbage.write_bytes(os.urandom(1000))
    for ckpt in (tmp_path / "missing.safetensors", garbage):
        proc = _run_cli(_args(ckpt, tmp_path / "out"))
        assert proc.returncode == 1
        assert "Traceback" not in proc.stderr
        assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1


def test_ctrl_c_stops_cleanly_with_no_partial_file(ckpt, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    args = _args(ckpt, out, "--n_iter", "200", "--steps", "10")
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 90
    while proc.poll() is None and time.time() < deadline and not any(out.glob("*.png")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Cancelled" in err
    files = list(out.iterdir())
    assert files and all(f.suffix == ".png" and not f.name.startswith(".") for f in files)
    for f in files:
        with Image.open(f) as im:
            im.load()
