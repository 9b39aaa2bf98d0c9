"""Settings round-trip, live in the (isolated) config folder, and survive a corrupt file."""

from __future__ import annotations

from pathlib import Path

from app.main import parse_args
from app.settings import (
    Settings,
    config_dir,
    default_gallery_dir,
    load_settings,
    save_settings,
    settings_path,
)


def test_paths_are_isolated_from_the_real_home(isolated_home):
    assert config_dir().is_relative_to(isolated_home)
    assert default_gallery_dir() == Path(isolated_home) / "Pictures" / "Latentdesk"


def test_round_trip_uses_the_config_folder():
    settings = Settings(last_model="/m/x.safetensors", parameters={"steps": 9})
    save_settings(settings)
    assert settings_path().exists()
    loaded = load_settings()
    assert loaded.settings == settings and loaded.warning == ""
    assert not list(settings_path().parent.glob("*.tmp"))  # the temp file was renamed


def test_corrupt_file_is_moved_aside_with_a_message():
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text("{ not json")
    loaded = load_settings()
    assert loaded.settings == Settings()
    assert "could not be read" in loaded.warning
    assert not path.exists()
    kept = list(path.parent.glob("settings.json.broken-*"))
    assert len(kept) == 1 and kept[0].read_text() == "{ not json"


def test_unknown_keys_are_ignored(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"last_model": "a", "from_the_future": 1, "from_beyond": null}')
    assert load_settings(path).settings.last_model == "a"


def test_settings_of_an_older_version_still_load(tmp_path):
    # Version 0.1 wrote a "window_state" that nothing ever used; it is dropped on load.
    path = tmp_path / "s.json"
    path.write_text('{"geometry": "01d9", "window_state": "00ff", "parameters": {"steps": 9}}')
    loaded = load_settings(path)
    assert loaded.warning == "" and loaded.settings.geometry == "01d9"
    assert loaded.settings.parameters == {"steps": 9}
    save_settings(loaded.settings, path)
    assert "window_state" not in path.read_text()


def test_values_of_the_wrong_type_are_dropped(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"last_model": 3, "parameters": [1, 2], "gallery_dir": "/g"}')
    assert load_settings(path).settings == Settings(gallery_dir="/g")


def test_command_line():
    args = parse_args(["--model", "m.safetensors", "--output-dir", "out"])
    assert (args.model, args.output_dir) == ("m.safetensors", "out")
    assert parse_args([]).model is None
