"""An embedding's vector count, read from the file's header (the window's token counter)."""

from __future__ import annotations

import torch

from engine.library.embedding_vectors import embedding_vectors
from tests.engine.library.fake_models import write_small, write_torch_file


def test_safetensors_a1111_and_diffusers_layouts(tmp_path) -> None:
    assert embedding_vectors(write_small({"emb_params": (3, 768)}, tmp_path / "a.safetensors")) == 3
    sdxl = write_small({"clip_l": (5, 768), "clip_g": (5, 1280)}, tmp_path / "xl.safetensors")
    assert embedding_vectors(sdxl) == 5
    learned = write_small({"<cat-toy>": (768,)}, tmp_path / "learned_embeds.safetensors")
    assert embedding_vectors(learned) == 1


def test_pickles_are_walked_not_unpickled(tmp_path) -> None:
    a1111 = {"string_to_token": {"*": 265}, "string_to_param": {"*": torch.zeros(4, 768)}}
    assert embedding_vectors(write_torch_file(a1111 | {"step": 9}, tmp_path / "neg.pt")) == 4
    old = write_torch_file({"emb_params": torch.zeros(2, 768)}, tmp_path / "old.pt", legacy=True)
    assert embedding_vectors(old) == 2


def test_unreadable_or_foreign_files_give_none(tmp_path) -> None:
    assert embedding_vectors(tmp_path / "missing.pt") is None
    (tmp_path / "junk.pt").write_bytes(b"\x80\x04junk")
    assert embedding_vectors(tmp_path / "junk.pt") is None
    two_keys = write_small({"a": (2, 3), "b": (1,)}, tmp_path / "x.safetensors")
    assert embedding_vectors(two_keys) is None  # no embedding layout: not guessed
    (tmp_path / "cut.safetensors").write_bytes(b"\xff" * 8 + b"{")
    assert embedding_vectors(tmp_path / "cut.safetensors") is None
