"""latentdesk-cli: outputs, JSON summary, one-line errors, clean Ctrl+C."""

import json
import os
import re
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


def test_each_request_is_checked_once(ckpt, tmp_path, monkeypatch, capsys):
    """The CLI checks requests before torch is imported; the Engine must not check them again."""
    from engine import cli, session

    calls = []
    real = session.validate_request

    def counting(where):
        def check(request):
            calls.append((where, request.prompt))
            return real(request)

        return check

    # Both places that can check a request: the CLI itself, and the Engine's validate/generate.
    monkeypatch.setattr(cli, "validate_request", counting("cli"))
    monkeypatch.setattr(session, "validate_request", counting("engine"))
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("first prompt\nsecond prompt\n")
    args = _args(ckpt, tmp_path / "o", "--from-file", str(prompts), "--n_iter", "2", "--json")
    assert main(args) == 0
    assert calls == [("cli", "first prompt"), ("cli", "second prompt")]
    assert len(json.loads(capsys.readouterr().out)["images"]) == 4


def test_bad_values_are_refused_before_the_model_is_read(tmp_path, capsys):
    missing = tmp_path / "absent.safetensors"
    assert main(_args(missing, tmp_path / "o", "--n_samples", "0")) == 1
    err = capsys.readouterr().err
    assert "Batch size" in err and "absent" not in err


def _seed_of(png):
    with Image.open(png) as im:
        im.load()  # raises on a truncated file
        assert im.size == (64, 64)
        params = im.info["parameters"]
    (seed,) = re.findall(r"(?:^|, )Seed: (\d+)(?:,|$)", params, re.MULTILINE)
    return int(seed)


def test_ctrl_c_in_batch_3_of_4_keeps_the_first_two_batches(ckpt, tmp_path):
    """A real process: 4 batches of 2, SIGINT once batch 2's last image is on disk. Batch 3 is
    cancelled within a step; the 4 images of batches 1 and 2 stay, complete, and nothing else."""
    out = tmp_path / "out"
    seed = 777
    # 20 steps per batch: the gap between two batches' images is far longer than our polling.
    args = _args(ckpt, out, "--seed", str(seed), "--n_samples", "2", "--n_iter", "4")
    args += ["--steps", "20"]  # the last --steps wins
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    with open(tmp_path / "stdout", "w+") as stdout, open(tmp_path / "stderr", "w+") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", *args], env=env, stdout=stdout, stderr=stderr
        )
        try:
            deadline = time.monotonic() + 300  # a slow shared machine: startup, load, 2 batches
            pngs = []
            while proc.poll() is None and time.monotonic() < deadline:
                pngs = list(out.glob("*.png")) if out.is_dir() else []
                if len(pngs) >= 4:
                    break
                time.sleep(0.01)
            assert proc.poll() is None, "the CLI ended before the signal"
            assert len(pngs) == 4, f"expected the 4 images of 2 batches, saw {len(pngs)}"
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stdout.seek(0)
        stderr.seek(0)
        printed, err = stdout.read(), stderr.read()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Cancelled" in err
    files = sorted(out.iterdir())
    # Only the finished PNGs: no temp file, no fifth image from the cancelled batch.
    assert len(files) == 4
    assert all(f.suffix == ".png" and not f.name.startswith(".") for f in files)
    assert sorted(_seed_of(f) for f in files) == [seed, seed + 1, seed + 2, seed + 3]
    assert len(printed.splitlines()) == 4  # each image was reported as it was saved


def test_json_after_ctrl_c_lists_the_images_kept(ckpt, tmp_path, monkeypatch, capsys):
    from engine.session import Engine

    real_generate = Engine.generate

    def generate(self, request, *, on_image=None, cancel=None, **kw):
        def first_image_then_ctrl_c(event):
            on_image(event)
            if event.index == 1:  # the end of batch 1 of 3: as if Ctrl+C came now
                cancel.set()

        return real_generate(self, request, on_image=first_image_then_ctrl_c, cancel=cancel, **kw)

    monkeypatch.setattr(Engine, "generate", generate)
    out = tmp_path / "out"
    code = main(_args(ckpt, out, "--seed", "9", "--n_samples", "2", "--n_iter", "3", "--json"))
    assert code == 130
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["cancelled"] is True
    assert [img["seed"] for img in summary["images"]] == [9, 10]
    assert sorted(img["path"] for img in summary["images"]) == sorted(str(p) for p in out.iterdir())
    assert "2 finished image(s) kept" in captured.err


def test_seed_minus_one_is_random_and_printed(ckpt, tmp_path, capsys):
    assert main(_args(ckpt, tmp_path / "o", "--seed", "-1", "--n_samples", "2")) == 0
    captured = capsys.readouterr()
    (seed,) = re.findall(r"^Seed (\d+) \(random: --seed \1 repeats it\)$", captured.err, re.M)
    seeds = [int(s) for s in re.findall(r"\(seed (\d+)\)$", captured.out, re.M)]
    assert seeds == [int(seed), int(seed) + 1]


def test_a_random_seed_is_shared_by_every_prompt_and_in_the_summary(ckpt, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("first prompt\nsecond prompt\n")
    assert main(_args(ckpt, tmp_path / "o", "--from-file", str(prompts), "--json")) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    # The printed seed repeats the whole run, as an explicit --seed does.
    assert [img["seed"] for img in summary["images"]] == [summary["seed"]] * 2
    assert captured.err == ""  # --json: the seed is in the summary, stderr stays quiet


def test_seed_and_prompt_errors_come_before_torch(tmp_path):
    from tests.engine.test_cli_models import _cli_without_torch

    out = ["--outdir", str(tmp_path / "out"), "--ckpt", "no-such-model"]
    code, _, err = _cli_without_torch(*_args("x", tmp_path, *out, "--seed", "-2"))
    assert (code, err) == (
        1,
        "error: Seed must be between 0 and 4294967295, or -1 for a random one, not -2.",
    )
    # -1 is accepted: the run goes on to look for the model, still without torch.
    code, _, err = _cli_without_torch(*_args("x", tmp_path, *out, "--seed", "-1", "--json"))
    assert code == 1 and err.startswith("error: no-such-model: no such file")
    for prompt in ([], ["--prompt", ""], ["--prompt", "  "]):
        code, _, err = _cli_without_torch("txt2img", *out, *prompt)
        assert (code, err) == (
            1,
            'error: The prompt is empty: say what to draw with --prompt "a lighthouse at dusk", '
            "or give a file of prompts, one a line, with --from-file FILE.",
        )


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["txt2img", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere
    assert "(default: outputs/txt2img-samples)" in text and "folder for the PNGs" in text
    assert "height in pixels, a multiple of 8 (default: 512)" in text
    assert "guidance scale (default: 7.0)" in text
    assert "-1 or omitted: random" in text and "CompVis" in text
    assert "sampling steps (default: 25; 50 with ddim, plms; 6 with lcm)" in text
