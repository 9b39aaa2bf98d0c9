"""latentdesk-cli txt2img's hires flags: into the request, checked early, into the PNG."""

import json

import pytest
from PIL import Image

from engine.cli import build_parser, main, requests_from_args
from engine.parameters import parse_parameters, request_from_parameters
from tests.factories import tiny_sd1_state_dict, write_checkpoint

HIRES_FLAGS = ["--hires-scale", "2", "--hires-steps", "1", "--hires-denoise", "0.4"]


def test_the_flags_make_the_request():
    args = build_parser().parse_args(
        ["txt2img", "--prompt", "a fox", *HIRES_FLAGS, "--hires-upscaler", "lanczos"]
    )
    request = requests_from_args(args, None)[0]
    assert (request.hires_scale, request.hires_steps) == (2.0, 1)
    assert (request.hires_denoise, request.hires_upscaler) == (0.4, "lanczos")


def test_without_flags_there_is_no_hires_pass():
    args = build_parser().parse_args(["txt2img", "--prompt", "a fox"])
    assert requests_from_args(args, None)[0].hires_scale == 1.0


def test_img2img_has_no_hires_flags(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["img2img", "--init-img", "x.png", "--hires-scale", "2"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --hires-scale" in capsys.readouterr().err


def test_a_target_beyond_the_limit_is_refused_before_loading(capsys, tmp_path):
    argv = ["txt2img", "--prompt", "a fox", "--W", "1024", "--H", "512", "--hires-scale", "3"]
    assert main([*argv, "--ckpt", str(tmp_path / "missing.safetensors")]) == 1
    err = capsys.readouterr().err
    # The size's message, not the missing model's: nothing was opened.
    assert "3072x1536" in err and "at most 2" in err


def test_the_png_has_the_target_size_and_a1111s_hires_keys(tmp_path, capsys):
    ckpt = tmp_path / "tiny.safetensors"
    write_checkpoint(tiny_sd1_state_dict(seed=2), ckpt)
    argv = ["txt2img", "--ckpt", str(ckpt), "--outdir", str(tmp_path / "out"), "--prompt", "a fox"]
    argv += ["--H", "64", "--W", "64", "--steps", "2", "--seed", "3", "--precision", "full"]
    assert main([*argv, *HIRES_FLAGS, "--hires-upscaler", "lanczos", "--json"]) == 0
    [entry] = json.loads(capsys.readouterr().out)["images"]
    with Image.open(entry["path"]) as im:
        assert im.size == (128, 128)
        text = im.info["parameters"]
    assert "Size: 64x64" in text
    assert "Hires upscale: 2, Hires steps: 1, Hires upscaler: Lanczos" in text
    fields = request_from_parameters(parse_parameters(text))
    assert {k: v for k, v in fields.items() if k.startswith("hires_")} == {
        "hires_scale": 2.0,
        "hires_steps": 1,
        "hires_denoise": 0.4,
        "hires_upscaler": "lanczos",
    }
