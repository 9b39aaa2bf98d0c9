"""`latentdesk-cli info`: text and JSON reports, errors that do not stop the others, no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engine.cli import main
from engine.gallery.recovered import FIELDS

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).parent / "fixtures"

A1111_BLOCK = """\
{path}
  tool             A1111
  prompt           a lighthouse at dusk, (masterpiece:1.2)
  negative_prompt  blurry, lowres
  seed             1234567890
  steps            20
  cfg_scale        7
  sampler          DPM++ 2M
  schedule         Karras
  width            512
  height           768
  model            v1-5-pruned-emaonly
  model_hash       6ce0161689
  missing          nothing
"""


def test_text_report_of_one_file(capsys):
    path = FIXTURES / "a1111.png"
    assert main(["info", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == A1111_BLOCK.format(path=path) + "\n" and err == ""


def test_text_report_shows_missing_fields_multiline_prompts_and_notes(capsys):
    assert main(["info", str(FIXTURES / "comfyui.png"), str(FIXTURES / "invokeai_dream.png")]) == 0
    out = capsys.readouterr().out
    assert "  prompt           a lighthouse at dusk\n                   oil painting\n" in out
    assert "  model_hash       —\n  missing          model_hash\n" in out
    assert "  note             The seed 156680208700286 is outside 0..4294967295" in out
    assert "  negative_prompt  (empty)\n" in out  # the Dream line has no [negative] part
    assert "  missing          schedule, model, model_hash\n" in out


def test_json_report_and_errors_that_do_not_stop_the_others(capsys, tmp_path):
    not_image = tmp_path / "notes.txt"
    not_image.write_text("hello")
    files = [
        FIXTURES / "fooocus.jpg",
        tmp_path / "gone.png",
        not_image,
        tmp_path,
        FIXTURES / "novelai.png",
    ]
    assert main(["info", "--json", *map(str, files)]) == 1
    out, err = capsys.readouterr()
    reports = json.loads(out)
    assert [r["path"] for r in reports] == [str(f) for f in files]
    fooocus, gone, text, folder, novelai = reports
    assert list(fooocus) == ["path", "tool", *FIELDS, "strength", "missing", "notes"]
    assert (fooocus["tool"], fooocus["seed"], fooocus["width"]) == (
        "Fooocus",
        8190438617298367203,
        1152,
    )
    assert fooocus["missing"] == [] and len(fooocus["notes"]) == 2
    assert (novelai["tool"], novelai["missing"]) == ("NovelAI", ["model_hash"])
    assert gone == {"path": str(files[1]), "error": "no such file"}
    assert text == {"path": str(not_image), "error": "no generation parameters found in it"}
    assert folder == {"path": str(tmp_path), "error": "a folder, not an image file"}
    assert err.splitlines() == [
        f"error: {files[1]}: no such file",
        f"error: {not_image}: no generation parameters found in it",
        f"error: {tmp_path}: a folder, not an image file",
    ]


def test_info_never_imports_torch():
    script = (
        "import sys\n"
        "from engine.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print(f\"torch imported: {'torch' in sys.modules}\", file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    files = [str(p) for p in sorted(FIXTURES.iterdir()) if p.suffix in (".png", ".jpg", ".webp")]
    proc = subprocess.run(
        [sys.executable, "-c", script, "info", "--json", *files],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["torch imported: False"]
    assert len(json.loads(proc.stdout)) == len(files) == 15
