"""latentdesk-cli models list|download|add-folder|remove-folder, and --ckpt by name or by default.

Every test runs on a fake computer in tmp_path (home, config, data, cache and Hugging Face
folders), never the real one; downloads come from the loopback hub in tests/engine/library.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub import constants

from engine.cli import main
from engine.cli_models import KIND_TITLES, NO_MODEL_ADVICE, ProgressLine, progress_text
from engine.library import KINDS, app_models_dir
from engine.library.download import STAGING_DIR, DownloadProgress
from tests.engine.library.hf_server import FakeHub, HostedFile
from tests.factories import VAE_PREFIX, tiny_sd1_state_dict, write_checkpoint

ROOT = Path(__file__).resolve().parents[2]
A1111 = Path("stable-diffusion-webui") / "models"
MODEL_FIELDS = {"name", "path", "kind", "family", "inpainting", "size", "source"}
MODEL_FIELDS |= {"short_hash", "problem", "usable"}


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("weights")
    sd = tiny_sd1_state_dict(seed=4)
    vae = {k: v for k, v in sd.items() if k.startswith(VAE_PREFIX)}
    # Text attention 1024 wide: what an SD 2.x checkpoint looks like to the scanner.
    sd2 = {k: _widen_context(k, v, 1024) for k, v in sd.items()}
    return {
        "sd1": write_checkpoint(sd, folder / "tiny.safetensors"),
        "vae": write_checkpoint(vae, folder / "vae.safetensors"),
        "sd2": write_checkpoint(sd2, folder / "sd2.safetensors"),
    }


def _widen_context(key: str, tensor: torch.Tensor, width: int) -> torch.Tensor:
    if key.endswith(("attn2.to_k.weight", "attn2.to_v.weight")):
        return torch.zeros(tensor.shape[0], width)
    return tensor


@dataclass
class Computer:
    """A fake computer: its home, the app's models folder, a LATENTDESK_MODEL_PATH folder."""

    home: Path
    app_models: Path
    env_models: Path
    config: Path  # the library settings the app and the CLI share

    def put(self, source: Path, path: Path) -> Path:
        """A model file at ``path`` (a hard link: the library reads only its header)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, path)
        return path

    def settings(self) -> dict:
        return json.loads(self.config.read_text())


@pytest.fixture
def computer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Computer:
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "HF_HOME", "HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    env_models = tmp_path / "env-models"
    monkeypatch.setenv("LATENTDESK_MODEL_PATH", str(env_models))
    for var in ("HF_ENDPOINT", "HF_TOKEN", "HF_HUB_OFFLINE", "HF_HUB_CACHE", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))
    config = tmp_path / "xdg_config_home" / "latentdesk" / "library.json"
    return Computer(tmp_path / "home", app_models_dir(), env_models, config)


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def _txt2img(*args: str) -> list[str]:
    quick = "--prompt cat --H 64 --W 64 --steps 1 --precision full --device cpu --json"
    return ["txt2img", *quick.split(), *args]


# --- models list -------------------------------------------------------------------------------


def test_list_json_names_every_file_with_where_it_was_found(computer, weights, capsys):
    a1111 = computer.put(
        weights["sd1"], computer.home / A1111 / "Stable-diffusion" / "dreamy.safetensors"
    )
    vae = computer.put(weights["vae"], computer.home / A1111 / "VAE" / "vae-ft.safetensors")
    app = computer.put(weights["sd1"], computer.app_models / "app-model.safetensors")
    env = computer.put(weights["sd1"], computer.env_models / "env-model.safetensors")
    empty = computer.env_models / "empty.safetensors"
    empty.write_bytes(b"")
    missing = computer.home / "gone"
    os.environ["LATENTDESK_MODEL_PATH"] += os.pathsep + str(missing)

    listing = _json(capsys, "models", "list", "--json")

    assert set(listing) == {"models", "skipped"}
    assert all(set(m) == MODEL_FIELDS for m in listing["models"])
    size = weights["sd1"].stat().st_size

    def checkpoint(path: Path, source: str) -> dict:
        return {
            "name": path.stem,
            "path": str(path),
            "kind": "checkpoint",
            "family": "sd1",
            "inpainting": False,
            "size": size,
            "source": source,
            "short_hash": None,  # not computed by a scan: the first generation or download does
            "problem": "",
            "usable": True,
        }

    checkpoints, (vae_found, empty_found) = listing["models"][:3], listing["models"][3:]
    # Checkpoints first, by name; then the other kinds.
    assert checkpoints == [
        checkpoint(app, "app"),
        checkpoint(a1111, "a1111"),
        checkpoint(env, "env"),
    ]
    assert (vae_found["path"], vae_found["kind"], vae_found["source"]) == (str(vae), "vae", "a1111")
    assert vae_found["usable"] is False and vae_found["size"] == weights["vae"].stat().st_size
    assert (empty_found["kind"], empty_found["size"], empty_found["usable"]) == (
        "unknown",
        0,
        False,
    )
    assert "0-byte" in empty_found["problem"]
    assert listing["skipped"] == [{"path": str(missing), "reason": "folder not found"}]


def test_list_text_groups_by_kind_and_family_and_ends_with_what_was_skipped(
    computer, weights, capsys
):
    computer.put(weights["sd1"], computer.app_models / "app-model.safetensors")
    computer.put(weights["sd2"], computer.app_models / "sd2-model.safetensors")
    computer.put(weights["vae"], computer.home / A1111 / "VAE" / "vae-ft.safetensors")
    (computer.env_models / "empty.safetensors").parent.mkdir(parents=True)
    (computer.env_models / "empty.safetensors").write_bytes(b"")
    os.environ["LATENTDESK_MODEL_PATH"] += os.pathsep + str(computer.home / "gone")

    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()

    titles = [line for line in lines if line and not line.startswith(" ")]
    assert titles[:4] == [
        "Checkpoints, SD 1.x",
        "Checkpoints, SD 2.x",
        "VAEs, family unknown",
        "Other files, family unknown",
    ]
    (model,) = [line for line in lines if "app-model" in line]
    assert "34." in model and " app " in model and "[" not in model  # size, source, usable
    (sd2,) = [line for line in lines if "sd2-model" in line]
    assert sd2.endswith("  [not usable: SD 2.x: not supported yet]")  # a checkpoint says why
    (empty,) = [line for line in lines if "empty.safetensors" in line]
    assert "[0-byte file" in empty  # as does any file that cannot be read as a model
    skipped = lines.index("Skipped (could not be read):")
    assert lines[skipped + 1] == f"  {computer.home / 'gone'}: folder not found"
    assert lines[-1].startswith("4 file(s) found, 1 usable checkpoint(s)")


def test_every_kind_has_a_title():
    assert set(KIND_TITLES) == set(KINDS)


# --- models add-folder / remove-folder ----------------------------------------------------------


def test_add_folder_is_saved_and_listed_then_removed(computer, weights, tmp_path, capsys):
    folder = tmp_path / "my models"
    mine = computer.put(weights["sd1"], folder / "mine.safetensors")

    assert main(["models", "add-folder", str(folder)]) == 0
    assert str(folder) in capsys.readouterr().out
    assert computer.settings()["folders"] == [str(folder)]  # where the app reads them too
    found = _json(capsys, "models", "list", "--json")["models"]
    assert [(m["path"], m["source"]) for m in found] == [(str(mine), "user")]

    assert main(["models", "remove-folder", str(folder)]) == 0
    capsys.readouterr()
    assert computer.settings()["folders"] == []
    assert _json(capsys, "models", "list", "--json")["models"] == []
    assert mine.exists()  # nothing on disk is touched

    assert main(["models", "remove-folder", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not one of the added folders" in err
    assert main(["models", "add-folder", str(tmp_path / "absent")]) == 1
    assert "is not a folder" in capsys.readouterr().err


# --- --ckpt: a path, a name, or nothing ----------------------------------------------------------


def test_ckpt_by_name_generates_and_is_remembered(computer, weights, tmp_path, capsys):
    path = computer.put(
        weights["sd1"], computer.home / A1111 / "Stable-diffusion" / "dreamy.safetensors"
    )
    computer.put(weights["sd1"], computer.app_models / "other.safetensors")

    summary = _json(capsys, *_txt2img("--ckpt", "dreamy", "--outdir", str(tmp_path / "out")))

    assert summary["model"] == "dreamy" and len(summary["images"]) == 1
    assert Path(summary["images"][0]["path"]).is_file()
    assert computer.settings()["last_model"] == str(path)


def test_without_ckpt_the_only_model_then_the_last_used_one(computer, weights, tmp_path, capsys):
    out = ["--outdir", str(tmp_path / "out")]
    computer.put(weights["sd1"], computer.app_models / "only.safetensors")
    assert _json(capsys, *_txt2img(*out))["model"] == "only"  # the only one there is

    computer.put(weights["sd1"], computer.env_models / "newer.safetensors")
    assert _json(capsys, *_txt2img(*out))["model"] == "only"  # the one used last
    assert _json(capsys, *_txt2img("--ckpt", "newer", *out))["model"] == "newer"
    assert _json(capsys, *_txt2img(*out))["model"] == "newer"


# --- errors before torch ----------------------------------------------------------------------

# Runs the CLI in a fresh interpreter and says on stderr's last line whether torch was imported.
NO_TORCH = """
import sys
from engine.cli import main
code = main(sys.argv[1:])
print(f"torch imported: {'torch' in sys.modules}", file=sys.stderr)
sys.exit(code)
"""


def _cli_without_torch(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of the CLI; fails if it imported torch."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    *err, verdict = proc.stderr.splitlines()
    assert verdict == "torch imported: False", proc.stderr
    return proc.returncode, proc.stdout, "\n".join(err)


def test_bad_values_unknown_names_and_listing_never_import_torch(computer, weights, tmp_path):
    computer.put(weights["sd1"], computer.home / A1111 / "Stable-diffusion" / "dreamy.safetensors")
    computer.put(weights["sd1"], computer.app_models / "other.safetensors")
    out = ["--outdir", str(tmp_path / "out")]

    code, _, err = _cli_without_torch(*_txt2img("--ckpt", "dreamy", *out, "--steps", "0"))
    assert (code, err) == (1, "error: Steps must be between 1 and 150, not 0.")

    computer.put(weights["sd2"], computer.env_models / "sd2-model.safetensors")
    code, _, err = _cli_without_torch(*_txt2img("--ckpt", "sd2-model", *out))
    sd2 = computer.env_models / "sd2-model.safetensors"
    assert (code, err) == (
        1,
        f"error: sd2-model ({sd2}) cannot be used: SD 2.x: not supported yet",
    )

    code, _, err = _cli_without_torch(*_txt2img("--ckpt", "dreamyy", *out))
    assert code == 1 and err.startswith("error: dreamyy: no such file")
    assert "`latentdesk-cli models list`" in err and "\n" not in err

    code, _, err = _cli_without_torch(*_txt2img(*out))  # two models, none used yet
    assert code == 1 and err == (
        "error: 2 models found (dreamy, other): choose one with --ckpt NAME."
    )

    code, listing, _ = _cli_without_torch("models", "list", "--json")
    assert code == 0 and len(json.loads(listing)["models"]) == 3
    assert not (tmp_path / "out").exists()


def test_no_model_anywhere_says_how_to_get_one(computer, tmp_path):
    code, _, err = _cli_without_torch(*_txt2img("--outdir", str(tmp_path / "out")))
    assert (code, err) == (1, f"error: {NO_MODEL_ADVICE}")
    assert "latentdesk-cli models download stable-diffusion-1.5" in err and "--ckpt PATH" in err


def test_a_name_two_files_answer_to_lists_both(computer, weights, tmp_path):
    first = computer.put(
        weights["sd1"], computer.home / A1111 / "Stable-diffusion" / "twin.safetensors"
    )
    second = computer.put(weights["sd1"], computer.env_models / "twin.safetensors")
    code, _, err = _cli_without_torch(*_txt2img("--ckpt", "twin", "--outdir", str(tmp_path)))
    assert code == 1 and err.startswith("error: ")
    assert str(first) in err and str(second) in err and "Traceback" not in err


# --- models download ---------------------------------------------------------------------------

REPO, FILE = "latentdesk-tests/tiny-sd1", "tiny-sd1.safetensors"


@pytest.fixture
def hub(weights, monkeypatch) -> FakeHub:
    data = weights["sd1"].read_bytes()
    with FakeHub([HostedFile(REPO, FILE, data)]) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        huggingface_hub.close_session()  # the next client reads NO_PROXY
        yield server
    huggingface_hub.close_session()


def test_download_into_a_folder_shows_progress_and_prints_path_and_hash(
    computer, hub, tmp_path, capsys
):
    data = hub.files[0].data
    dest = tmp_path / "downloads"

    code = main(
        ["models", "download", REPO, FILE, "--sha256", hub.files[0].sha256, "--dir", str(dest)]
    )

    captured = capsys.readouterr()
    assert code == 0, captured.err
    short = hub.files[0].sha256[:10]
    assert captured.out == f"{dest / FILE}  (hash {short})\n"
    assert (dest / FILE).read_bytes() == data
    progress = [line for line in captured.err.splitlines() if " of " in line]
    assert progress and progress[-1].startswith("34.7 MB of 34.7 MB (100%)")
    assert f"models add-folder {dest}" in captured.err  # not a folder the library looks in


def test_download_into_the_models_folder_is_listed_with_its_hash(computer, hub, capsys):
    assert main(["models", "download", REPO, FILE]) == 0
    capsys.readouterr()
    (model,) = _json(capsys, "models", "list", "--json")["models"]
    assert (model["path"], model["source"]) == (str(computer.app_models / FILE), "app")
    assert model["short_hash"] == hub.files[0].sha256[:10]  # no need to read the file again


def test_download_errors_are_one_line(computer, hub, tmp_path, capsys):
    cases = [
        (["no-such-preset"], "is not a preset"),
        ([REPO, "absent.safetensors"], "absent.safetensors"),
        ([REPO, FILE, "--sha256", "abc"], "64 hexadecimal digits"),
    ]
    for args, message in cases:
        assert main(["models", "download", *args, "--dir", str(tmp_path)]) == 1
        err = capsys.readouterr().err.splitlines()
        assert err[-1].startswith("error: ") and message in err[-1], err


def test_ctrl_c_stops_the_download_keeps_the_part_and_the_next_run_resumes(computer, hub, tmp_path):
    size = len(hub.files[0].data)
    hub.bytes_per_second = size / 20  # 20 s for the whole file: time to press Ctrl+C
    dest = tmp_path / "models"
    args = [
        sys.executable,
        "-m",
        "engine.cli",
        "models",
        "download",
        REPO,
        FILE,
        "--dir",
        str(dest),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(tmp_path / "stderr", "w+") as stderr:
        proc = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                if "(10%)" in (tmp_path / "stderr").read_text():
                    break
                time.sleep(0.05)
            assert proc.poll() is None, (tmp_path / "stderr").read_text()
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        stderr.seek(0)
        err = stderr.read()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and out == ""
    assert f"kept in {dest / STAGING_DIR}" in err and "run the same command again" in err
    (part,) = (dest / STAGING_DIR).glob("*.incomplete")
    assert 0 < part.stat().st_size < size
    assert not (dest / FILE).exists()

    hub.bytes_per_second = None
    served_before = hub.bytes_served
    proc = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (dest / FILE).read_bytes() == hub.files[0].data
    assert hub.bytes_served - served_before < size  # the rest only, not the whole file again


def test_progress_on_a_terminal_is_one_line_rewritten():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    line = ProgressLine(stream)
    total = 4_265_146_304
    for done in (0, 1_200_000_000, total):
        line(DownloadProgress(done, total, rate=35_200_000, seconds_left=(total - done) / 35.2e6))
    line.close()
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n") and text.count("\r") == 3
    assert "\r1.20 GB of 4.27 GB (28%), 35.2 MB/s, 1 min 27 s left\x1b[K" in text


def test_progress_in_a_log_is_a_line_per_tenth():
    stream = io.StringIO()
    line = ProgressLine(stream, clock=lambda: 0.0)
    for done in range(0, 101):  # a report per percent, all in the same instant
        line(DownloadProgress(done, 100, rate=10.0, seconds_left=(100 - done) / 10))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11 and lines[-1] == "100 bytes of 100 bytes (100%), 10 bytes/s"


def test_progress_text_without_a_total():
    assert progress_text(DownloadProgress(1_500_000, None, 0.0, None)) == "1.50 MB"
