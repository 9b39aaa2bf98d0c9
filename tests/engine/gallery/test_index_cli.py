"""`latentdesk-cli gallery search`: syncs the app's index first, prints or writes JSON, reads
a folder outside the index without adding it, and never imports torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.gallery.index import GalleryIndex, default_index_path
from tests.engine.gallery.index_pictures import save_picture

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def gallery(tmp_path: Path, monkeypatch) -> Path:
    """The app's gallery folder, as the window's settings name it, with two pictures."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    folder = tmp_path / "my gallery"
    save_picture(folder / "car.png", "a red car at night", seed=11, model="dreamshaper_8")
    save_picture(folder / "boat.png", "a red boat", "blurry", seed=22, mtime=1_700_000_000)
    settings = tmp_path / "config" / "latentdesk" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"gallery_dir": str(folder)}))
    return folder


def run_json(capsys, *args: str) -> list[dict]:
    assert main(["gallery", "search", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_lists_the_matches_of_the_apps_gallery(gallery, capsys):
    found = run_json(capsys, "red")
    assert [Path(item["path"]).name for item in found] == ["car.png", "boat.png"]
    car = found[0]
    assert (car["seed"], car["model"], car["prompt"], car["width"]) == (
        11,
        "dreamshaper_8",
        "a red car at night",
        512,
    )
    assert car["folder"] == str(gallery) and car["starred"] is False
    assert car["date"].startswith("20") and car["tool"] == "A1111"
    with GalleryIndex.open(default_index_path()) as index:  # the app's index, kept
        assert index.folders() == [gallery]


def test_words_after_double_dash_and_sort_and_limit(gallery, capsys):
    assert [f["seed"] for f in run_json(capsys, "--", "red", "-blurry")] == [11]
    assert [f["seed"] for f in run_json(capsys, "--sort", "oldest", "--limit", "1")] == [22]


def test_text_output_has_path_date_size_seed_model_and_prompt(gallery, capsys):
    assert main(["gallery", "search", "boat"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(str(gallery / "boat.png"))
    assert "2023-11-1" in out[0] and "512x512" in out[0] and "seed 22" in out[0]
    assert "v1-5-pruned-emaonly" in out[0]
    assert out[1] == "    a red boat"
    assert out[2] == "1 matching picture."


def test_new_files_are_found_without_any_other_step(gallery, capsys):
    assert run_json(capsys, "tractor") == []
    save_picture(gallery / "tractor.png", "a green tractor")
    assert len(run_json(capsys, "tractor")) == 1


def test_dir_outside_the_index_is_read_but_not_added(gallery, tmp_path, capsys):
    other = tmp_path / "downloads"
    save_picture(other / "x.png", "a red kite")
    found = run_json(capsys, "red", "--dir", str(other))
    assert [Path(item["path"]).name for item in found] == ["x.png"]
    with GalleryIndex.open(default_index_path()) as index:
        assert index.folders() == [gallery]
        assert index.count("kite") == 0


def test_dir_inside_the_gallery_searches_only_there(gallery, capsys):
    save_picture(gallery / "2026" / "inner.png", "a red inner picture")
    found = run_json(capsys, "red", "--dir", str(gallery / "2026"))
    assert [Path(item["path"]).name for item in found] == ["inner.png"]


def test_a_dir_that_is_not_a_folder_is_one_line_and_exit_1(gallery, tmp_path, capsys):
    assert main(["gallery", "search", "red", "--dir", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "is not a folder" in err and "\n" not in err


def test_a_broken_index_is_rebuilt_with_a_note(gallery, capsys):
    default_index_path().parent.mkdir(parents=True, exist_ok=True)
    default_index_path().write_bytes(b"garbage" * 1000)
    assert main(["gallery", "search", "red"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("note: The gallery index") and "damaged" in captured.err
    assert "2 matching pictures." in captured.out


def test_help_documents_the_query_syntax(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["gallery", "search", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for term in ("model:NAME", "seed:N", "size:WxH", "after:YYYY-MM-DD", "starred", "--dir"):
        assert term in text
    assert "NOT added to the index" in text


NO_TORCH = """
import sys
from engine.cli import main
code = main(sys.argv[1:])
print(f"torch imported: {'torch' in sys.modules}", file=sys.stderr)
sys.exit(code)
"""


def test_never_imports_torch(gallery):
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH, "gallery", "search", "car", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=120,
    )
    assert proc.stderr.splitlines()[-1] == "torch imported: False", proc.stderr
    assert proc.returncode == 0
    assert [Path(item["path"]).name for item in json.loads(proc.stdout)] == ["car.png"]
