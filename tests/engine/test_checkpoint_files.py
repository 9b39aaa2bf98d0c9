"""Single-file checkpoint reading: formats, ignored keys, and every way a file can be bad."""

import json
import os
import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from engine.errors import CorruptCheckpointError, NotACheckpointError, UnsafeCheckpointError
from engine.loading.checkpoint import load_single_file, read_shapes, sniff_format


def _weights():
    g = torch.Generator().manual_seed(0)
    return {
        "model.diffusion_model.out.2.weight": torch.randn(4, 8, 3, 3, generator=g),
        "first_stage_model.quant_conv.bias": torch.randn(8, generator=g),
    }


def _extras():
    return {
        "alphas_cumprod": torch.rand(1000),
        "model_ema.decay": torch.tensor(0.999),
        "cond_stage_model.transformer.text_model.embeddings.position_ids": torch.arange(77)[None],
    }


def test_safetensors_loads_and_drops_ignored_keys(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({**_weights(), **_extras()}, str(path))
    sd = load_single_file(path)
    assert set(sd) == set(_weights())
    for k, v in _weights().items():
        assert torch.equal(sd[k], v)
    assert read_shapes(path)["model.diffusion_model.out.2.weight"] == (4, 8, 3, 3)


def test_format_is_read_from_bytes_not_name(tmp_path):
    path = tmp_path / "renamed.ckpt"
    save_file(_weights(), str(path))
    assert sniff_format(path) == "safetensors"
    assert set(load_single_file(path)) == set(_weights())


def test_ckpt_unwraps_state_dict_and_keeps_fp16(tmp_path):
    path = tmp_path / "m.ckpt"
    half = {k: v.half() for k, v in _weights().items()}
    torch.save({"state_dict": {**half, **_extras()}, "global_step": 470000, "epoch": 5}, path)
    sd = load_single_file(path)
    assert set(sd) == set(_weights())
    assert all(v.dtype == torch.float16 for v in sd.values())


def test_bare_ckpt_without_wrapper(tmp_path):
    path = tmp_path / "bare.ckpt"
    torch.save(_weights(), path)
    assert set(load_single_file(path)) == set(_weights())


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("container", ["torch-zip", "raw-pickle"])
def test_pickle_that_runs_code_is_refused_and_never_runs(tmp_path, container):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    payload = {"state_dict": {**_weights(), "evil": _RunsCode(marker)}}
    if container == "torch-zip":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="safetensors"):
        load_single_file(path)
    assert not marker.exists()


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    path = tmp_path / "noise.safetensors"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(NotACheckpointError, match="not a model checkpoint"):
        load_single_file(path)


def test_empty_and_text_files(tmp_path):
    for name, data in (("empty.safetensors", b""), ("readme.ckpt", b"hello world\n" * 10)):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(NotACheckpointError):
            load_single_file(path)


@pytest.mark.parametrize("fraction", [0.02, 0.3, 0.6, 0.9, 0.999])
def test_truncated_safetensors(tmp_path, fraction):
    full = tmp_path / "full.safetensors"
    save_file(_weights(), str(full))
    data = full.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: max(9, int(len(data) * fraction))])
    with pytest.raises((CorruptCheckpointError, NotACheckpointError)) as info:
        load_single_file(cut)
    assert "download" in str(info.value).lower() or "checkpoint" in str(info.value).lower()


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.95])
def test_truncated_ckpt(tmp_path, fraction):
    full = tmp_path / "full.ckpt"
    torch.save({"state_dict": _weights()}, full)
    data = full.read_bytes()
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises((CorruptCheckpointError, NotACheckpointError)):
        load_single_file(cut)


def _raw_safetensors(path, header: dict, data: bytes = b"\0" * 64):
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)


def test_absurd_shapes_are_refused_before_allocating(tmp_path):
    path = tmp_path / "absurd.safetensors"
    huge = {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 64]}
    _raw_safetensors(path, {"model.diffusion_model.x": huge})
    with pytest.raises(CorruptCheckpointError, match="impossible shape"):
        load_single_file(path)


def test_out_of_range_and_overlapping_offsets(tmp_path):
    path = tmp_path / "offsets.safetensors"
    past_end = {"dtype": "F32", "shape": [4], "data_offsets": [0, 10_000]}
    _raw_safetensors(path, {"a": past_end})
    with pytest.raises(CorruptCheckpointError, match="incomplete"):
        load_single_file(path)
    overlap = {
        "a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
        "b": {"dtype": "F32", "shape": [8], "data_offsets": [16, 48]},
    }
    _raw_safetensors(path, overlap)
    with pytest.raises(CorruptCheckpointError):
        load_single_file(path)


def test_shape_that_disagrees_with_its_bytes(tmp_path):
    path = tmp_path / "mismatch.safetensors"
    _raw_safetensors(path, {"a": {"dtype": "F32", "shape": [100], "data_offsets": [0, 64]}})
    with pytest.raises(CorruptCheckpointError):
        load_single_file(path)


def test_pickle_of_a_non_mapping(tmp_path):
    path = tmp_path / "list.ckpt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(NotACheckpointError, match="not a table of weights"):
        load_single_file(path)
