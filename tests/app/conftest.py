"""Every app test runs with its own config, pictures and model folders, never the person's."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "Pictures").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_PICTURES_DIR", str(home / "Pictures"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    # The model library also looks in the Hugging Face cache and LATENTDESK_MODEL_PATH.
    monkeypatch.setenv("HF_HOME", str(home / ".cache" / "huggingface"))
    for name in ("LATENTDESK_MODEL_PATH", "HF_ENDPOINT", "HF_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def strip(qtbot):
    """A gallery strip on screen, shared by the gallery tests."""
    from app.gallery import GalleryStrip

    s = GalleryStrip()
    qtbot.addWidget(s)
    s.show()
    return s
