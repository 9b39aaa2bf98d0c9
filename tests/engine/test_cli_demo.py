"""The CLI and the built-in demo: `--ckpt demo`, the fallback when nothing is installed, its
native size as the default size, and `models list`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from engine.api import GenerationRequest
from engine.cli import main, sized_for_model
from engine.cli_models import USING_DEMO
from engine.image_metadata import read_png_parameters
from engine.library import app_models_dir
from engine.library.builtin import DEMO_ENV
from engine.parameters import parse_parameters
from tests.demo_files import DEMO_NAME, NATIVE_SIZE, write_tiny_demo
from tests.factories import tiny_sd1_state_dict, write_checkpoint

QUICK = ["--prompt", "a red circle", "--steps", "1", "--precision", "full", "--device", "cpu"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return write_tiny_demo(tmp_path_factory.mktemp("resources") / "demo")


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "plain.safetensors"
    return write_checkpoint(tiny_sd1_state_dict(seed=2), path)


@pytest.fixture
def computer(tmp_path, monkeypatch, demo) -> Path:
    """A computer with no model installed; the demo is the one shipped. Returns the config."""
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "HF_HOME", "HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.delenv("LATENTDESK_MODEL_PATH", raising=False)
    monkeypatch.setenv(DEMO_ENV, str(demo))
    return tmp_path / "xdg_config_home" / "latentdesk" / "library.json"


def _install(source: Path, name: str) -> None:
    folder = app_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).hardlink_to(source)


def _txt2img(capsys, tmp_path, *args: str) -> tuple[dict, str]:
    code = main(["txt2img", *QUICK, "--outdir", str(tmp_path / "out"), "--json", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), err


def _png_settings(summary: dict) -> dict[str, str]:
    return parse_parameters(read_png_parameters(Path(summary["images"][0]["path"]))).settings


def test_ckpt_demo_makes_a_picture_at_its_native_size_named_after_it(computer, tmp_path, capsys):
    summary, err = _txt2img(capsys, tmp_path, "--ckpt", "demo")
    assert summary["model"] == DEMO_NAME and USING_DEMO not in err  # chosen, not a fallback
    settings = _png_settings(summary)
    assert settings["Model"] == DEMO_NAME
    assert settings["Size"] == f"{NATIVE_SIZE}x{NATIVE_SIZE}"
    assert not computer.exists() or "demo" not in computer.read_text()  # not remembered


def test_with_nothing_installed_the_demo_is_used_and_said_in_one_line(computer, tmp_path, capsys):
    summary, err = _txt2img(capsys, tmp_path, "--W", "64")
    assert summary["model"] == DEMO_NAME
    assert err.splitlines().count(USING_DEMO) == 1
    assert "models download stable-diffusion-1.5" in USING_DEMO
    assert _png_settings(summary)["Size"] == f"64x{NATIVE_SIZE}"  # --W given, --H native


def test_an_installed_model_is_the_default_as_before(computer, plain, tmp_path, capsys):
    _install(plain, "mine.safetensors")
    summary, err = _txt2img(capsys, tmp_path, "--H", "64", "--W", "64")
    assert summary["model"] == "mine" and USING_DEMO not in err
    assert json.loads(computer.read_text())["last_model"].endswith("mine.safetensors")

    # Two installed and none used before: the person chooses, as before; the demo not named.
    computer.unlink()
    _install(plain, "yours.safetensors")
    code = main(["txt2img", *QUICK, "--outdir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "2 models found (mine, yours)" in err and "Demo" not in err


def test_without_a_size_in_the_file_the_size_stays_512(tmp_path, plain):
    args = argparse.Namespace(W=None, H=None)
    request = GenerationRequest("x")
    assert sized_for_model(args, plain, [request]) == [request]
    assert (request.width, request.height) == (512, 512)


def test_models_list_shows_the_built_in_demo(computer, plain, capsys):
    assert main(["models", "list"]) == 0
    text = capsys.readouterr().out
    (line,) = [line for line in text.splitlines() if DEMO_NAME in line]
    assert "built-in" in line
    assert "the built-in demo only" in text and "models download stable-diffusion-1.5" in text

    assert main(["models", "list", "--json"]) == 0
    (model,) = json.loads(capsys.readouterr().out)["models"]
    assert (model["name"], model["source"], model["usable"]) == (DEMO_NAME, "built-in", True)

    _install(plain, "mine.safetensors")
    assert main(["models", "list"]) == 0
    assert "the built-in demo only" not in capsys.readouterr().out
