"""`latentdesk-cli doctor`: the report's folders and sections, its text, and its JSON agreeing
with torch on this machine."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections import namedtuple
from pathlib import Path

import torch

from engine import doctor
from engine.doctor import build_report
from engine.doctor_text import format_report
from engine.folder_check import check_folder, folder_problems
from engine.session import Engine
from tests.factories import tiny_sd1_state_dict, write_checkpoint
from tests.fake_host import FakeHost

ROOT = Path(__file__).resolve().parents[2]


def test_a_writable_folder_and_one_yet_to_be_created(tmp_path):
    here = check_folder("output", tmp_path)
    later = check_folder("output", tmp_path / "a" / "b")
    assert (here.exists, here.writable, later.exists, later.writable) == (True, True, False, True)
    assert here.free_bytes and here.free_bytes > 0
    assert folder_problems(here) == [] and list(tmp_path.iterdir()) == []  # nothing left behind


def test_an_output_folder_that_cannot_be_created(tmp_path):
    (tmp_path / "Pictures").write_text("a file where the folder should be")
    status = check_folder("output", tmp_path / "Pictures" / "Latentdesk")
    assert not status.writable and status.blocker == str(tmp_path / "Pictures")
    (problem,) = folder_problems(status)
    assert "not writable" in problem.what
    assert problem.fix.startswith("A file stands where a folder should be: mv ")


def test_an_unwritable_output_folder_suggests_another(tmp_path, monkeypatch):
    # Tests may run as root, for whom permission bits mean nothing: refuse the write itself.
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    (problem,) = folder_problems(check_folder("output", tmp_path))
    assert "--output-dir" in problem.fix and "Change gallery folder" in problem.fix
    (problem,) = folder_problems(check_folder("cache", tmp_path))
    assert problem.fix == f"sudo chown -R \"$USER\" '{tmp_path}'"


def test_low_disk_space_is_a_problem(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 10**12, 200 * 10**6))
    (problem,) = folder_problems(check_folder("data", tmp_path))
    assert "Only 200 MB are free" in problem.what and "df -h" in problem.fix


def test_every_problem_has_a_fix_and_a_failing_check_does_not_hide_the_rest(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))

    def broken(problems):
        raise KeyError("boom")

    monkeypatch.setattr(doctor, "_models", broken)
    report = build_report(output_dir=tmp_path, host=FakeHost({}))
    assert report["models"] is None
    assert report["torch"]["version"] == torch.__version__ and report["window"] is not None
    whats = [p["what"] for p in report["problems"]]
    assert "The models check failed: KeyError: 'boom'" in whats
    assert any(w.startswith("No display") for w in whats)
    assert all(p["fix"].strip() for p in report["problems"])


def test_models_found_in_the_app_folder_are_counted(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    models = tmp_path / "data" / "latentdesk" / "models"
    models.mkdir(parents=True)
    write_checkpoint(tiny_sd1_state_dict(seed=3), models / "tiny.safetensors")
    report = build_report(output_dir=tmp_path / "out", host=FakeHost({}))
    app = [f for f in report["models"]["folders"] if f["source"] == "app"]
    assert app and app[0]["path"] == str(models) and app[0]["models"] == 1
    assert not any("No usable Stable Diffusion model" in p["what"] for p in report["problems"])


def test_the_text_report_leads_with_problems_and_their_fixes(tmp_path):
    report = build_report(output_dir=tmp_path, host=FakeHost({}))
    text = format_report(report)
    assert text.startswith("Latentdesk ")
    assert f"Problems ({len(report['problems'])}):" in text
    for problem in report["problems"]:
        assert problem["what"] in text and problem["fix"].splitlines()[0] in text
    for heading in ("Devices:", "Window:", "Folders:", "Model folders:", "precision:"):
        assert heading in text


def test_doctor_json_agrees_with_torch_on_this_machine(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # a fresh cache: the CPU is timed too
    env.pop("LATENTDESK_CPU_PRECISION_FILE", None)
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "doctor", "--json", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["python"]["version"] == platform.python_version()
    t = report["torch"]
    assert t["version"] == torch.__version__
    assert t["cuda_available"] == torch.cuda.is_available()
    assert t["build"] == (f"CUDA {torch.version.cuda}" if torch.version.cuda else t["build"])
    assert (t["build"] == "CPU") == (torch.version.cuda is None and not torch.version.hip)
    assert len([d for d in t["devices"] if d["device"].startswith("cuda")]) == (
        torch.cuda.device_count() if torch.cuda.is_available() else 0
    )
    cpu = t["devices"][0]
    assert cpu["device"] == "cpu" and cpu["precision"] in ("bfloat16", "float32") and cpu["why"]
    assert cpu["timings_cached"] is False and cpu["gflops"]["matmul_float32"] > 0
    assert cpu["timings_file"] == str(tmp_path / "cache" / "latentdesk" / "cpu-precision.json")
    assert report["pyside6"]["version"] == importlib.metadata.version("PySide6-Essentials")
    window = report["window"]
    assert window["can_start"] is False and "No display" in window["problem"]
    roles = {f["role"]: f for f in report["folders"]}
    assert set(roles) == {"data", "config", "cache", "output"}
    assert roles["output"]["path"] == str(tmp_path) and roles["output"]["writable"]
    assert report["models"]["folders"]
    assert all(set(p) == {"what", "fix"} for p in report["problems"])
    assert report["seconds"] < 10


def test_the_engine_says_why_it_runs_on_the_cpu(tmp_path):
    ckpt = tmp_path / "tiny.safetensors"
    write_checkpoint(tiny_sd1_state_dict(seed=1), ckpt)
    chosen = Engine(device="cpu", precision="full")
    assert chosen.load_model(ckpt).device_note == ""  # asked for: nothing to explain
    automatic = Engine(precision="full")
    info = automatic.load_model(ckpt)
    if info.device == "cpu":
        assert info.device_note  # e.g. "no supported GPU found"
    else:
        assert info.device_note == ""
