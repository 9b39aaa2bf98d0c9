"""Start-up: the CLI imports only what a command needs (issue 14).

Each check runs in a fresh interpreter and reads its ``sys.modules``: argument mistakes and
``--help`` are answered before torch is imported (importing it alone takes a second or more),
and a whole txt2img never imports transformers (its model machinery costs ~2.5 s of start-up;
the engine's CLIP text model is its own, ``engine.text.clip_model``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.factories import tiny_sd1_state_dict, write_checkpoint

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "safetensors", "diffusers")

# Runs main() on each argv given as JSON and reports, after each, its exit code and which of
# HEAVY modules had been imported by then.
PROBE = """
import json, sys
from engine.cli import main
heavy = json.loads(sys.argv[1])
report = []
for argv in json.loads(sys.argv[2]):
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    report.append([code, sorted(m for m in heavy if m in sys.modules)])
print(json.dumps(report))
"""


def in_fresh_interpreter(code: str, *args: str):
    """Runs ``code`` in a new Python with ``args``; its last line of output, read as JSON."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def probe(*argvs: list[str]) -> list[tuple[int, list[str]]]:
    report = in_fresh_interpreter(PROBE, json.dumps(HEAVY), json.dumps(argvs))
    return [tuple(row) for row in report]


def test_argument_errors_and_help_stop_before_torch(tmp_path):
    ckpt = str(tmp_path / "missing.safetensors")  # never reached: the arguments fail first
    common = ["--ckpt", ckpt, "--outdir", str(tmp_path / "out")]
    argvs = [
        ["txt2img", "--bogus"],
        ["txt2img", "--prompt", "a cat", "--H", "abc", *common],
        ["txt2img", "--prompt", "a cat", "--sampler", "nope", *common],
        ["txt2img", "--prompt", "a cat", "--precision", "half", *common],
        ["img2img", "--prompt", "a cat", *common],  # --init-img is required
        ["paint", "--prompt", "a cat"],
        ["txt2img", "--help"],
        ["--help"],
    ]
    results = probe(*argvs)
    assert [code for code, _ in results] == [2, 2, 2, 2, 2, 2, 0, 0]
    assert all(imported == [] for _, imported in results), results
    assert not (tmp_path / "out").exists()


def test_txt2img_never_imports_transformers(tmp_path):
    ckpt = write_checkpoint(tiny_sd1_state_dict(), tmp_path / "tiny.safetensors")
    argv = ["txt2img", "--ckpt", str(ckpt), "--prompt", "a cat", "--negative-prompt", "dog"]
    argv += ["--H", "64", "--W", "64", "--steps", "2", "--seed", "1", "--json"]
    argv += ["--outdir", str(tmp_path / "out"), "--precision", "float32"]
    ((code, imported),) = probe(argv)
    assert code == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 1  # it really generated
    # torch and safetensors do the work; transformers (and diffusers) are never needed.
    assert imported == ["safetensors", "torch"]


# The installed script's own process (main() with no argv): reports whether the collector ran
# during the model load, and, when it ends, how many objects it had frozen and whether it is
# running again.
AS_SCRIPT = """
import gc, json, sys
import engine.cli as cli
import engine.session as session
seen = {}
load = session.Engine.load_model
def watched_load(self, *args, **kwargs):
    seen["collecting_while_loading"] = gc.isenabled()
    return load(self, *args, **kwargs)
session.Engine.load_model = watched_load
def end(code):
    seen.update(code=code, frozen=gc.get_freeze_count(), enabled=gc.isenabled())
    print(json.dumps(seen))
    sys.exit(code)
cli._end_process = end
sys.argv = ["latentdesk-cli", *json.loads(sys.argv[1])]
cli.main()
"""


def test_a_cli_process_freezes_its_start_up_objects(tmp_path):
    ckpt = write_checkpoint(tiny_sd1_state_dict(), tmp_path / "tiny.safetensors")
    argv = ["txt2img", "--ckpt", str(ckpt), "--prompt", "a cat", "--H", "64", "--W", "64"]
    argv += ["--steps", "1", "--outdir", str(tmp_path / "out"), "--json"]
    seen = in_fresh_interpreter(AS_SCRIPT, json.dumps(argv))
    # torch's modules and the model: tens of thousands of objects no collection walks again.
    assert seen == {
        "collecting_while_loading": False,
        "code": 0,
        "frozen": seen["frozen"],
        "enabled": True,
    }
    assert seen["frozen"] > 20_000


def test_main_called_in_process_freezes_nothing(tmp_path):
    import gc

    from engine.cli import main

    ckpt = write_checkpoint(tiny_sd1_state_dict(), tmp_path / "tiny.safetensors")
    argv = ["txt2img", "--ckpt", str(ckpt), "--prompt", "a cat", "--H", "64", "--W", "64"]
    argv += ["--steps", "1", "--outdir", str(tmp_path / "out"), "--json"]
    before = gc.get_freeze_count()
    assert main(argv) == 0
    assert gc.get_freeze_count() == before and gc.isenabled()


def test_collector_paused_restores_it_after_an_error():
    import gc

    from engine.cli import collector_paused

    before = gc.get_freeze_count()
    try:
        try:
            with collector_paused():
                assert not gc.isenabled()
                raise ValueError("a load that failed")
        except ValueError:
            pass
        assert gc.isenabled()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()  # this test process lives on
