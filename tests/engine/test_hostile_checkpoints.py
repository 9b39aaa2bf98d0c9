"""Hostile model files: every one must end in a CheckpointError whose message says what to do.

Complements test_checkpoint_files.py (a few hand-made cases on a two-tensor file) with a real
tiny SD 1.x checkpoint cut at many offsets, damaged in place, given absurd headers, wrong dtypes,
NaN weights, lone components, and code-running pickles in every path that reads a model file.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from engine import Engine, GenerationRequest
from engine.errors import (
    CheckpointError,
    CorruptCheckpointError,
    EngineError,
    NotACheckpointError,
    UnsafeCheckpointError,
)
from engine.loading.checkpoint import load_single_file
from tests.factories import CLIP_PREFIX, UNET_PREFIX, VAE_PREFIX, tiny_sd1_state_dict
from tests.factories import write_checkpoint as write_ckpt

# Words at least one of which every refusal must contain: it tells the person what to do.
ADVICE = ("download", "again", "load a", "choose", "use ", "convert")
N_OFFSETS = 50


def _assert_actionable(error: BaseException) -> None:
    assert isinstance(error, CheckpointError), f"{type(error).__name__}: {error}"
    text = str(error).lower()
    assert len(text) > 40 and any(word in text for word in ADVICE), text
    assert "traceback" not in text


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return tiny_sd1_state_dict(seed=3)


@pytest.fixture(scope="module")
def files(state, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    return {fmt: write_ckpt(state, folder / f"tiny.{fmt}") for fmt in ("safetensors", "ckpt")}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(device="cpu", precision="full")


def _refused(engine: Engine, path: Path) -> CheckpointError:
    with pytest.raises(EngineError) as info:
        engine.load_model(path)
    _assert_actionable(info.value)
    return info.value


def _cut_offsets(size: int, header_end: int) -> list[int]:
    """N_OFFSETS cuts spread over the file, plus the edges where parsers change state."""
    spread = np.linspace(0, size - 1, N_OFFSETS).astype(int).tolist()
    edges = [1, 7, 8, 9, header_end - 1, header_end, header_end + 1, size - 1]
    return sorted(set(spread + edges), reverse=True)


# --- truncation and damage ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
def test_truncated_at_many_offsets(files, engine, tmp_path, fmt):
    data = files[fmt].read_bytes()
    header_end = 8 + struct.unpack("<Q", data[:8])[0] if fmt == "safetensors" else 512
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(data)
    offsets = _cut_offsets(len(data), header_end)
    assert len(offsets) >= N_OFFSETS
    for offset in offsets:  # longest first: each cut only shortens the file further
        os.truncate(cut, offset)
        error = _refused(engine, cut)
        assert isinstance(error, CorruptCheckpointError | NotACheckpointError), offset
    assert engine.model_info is None  # nothing half-loaded was kept


@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
def test_damaged_bytes_never_escape_as_other_errors(files, tmp_path, fmt):
    """Overwrite 16 bytes at 24 places (header, pickle, zip directory, tensor data): the file
    either still reads (data bytes are only values) or gives a CheckpointError."""
    data = files[fmt].read_bytes()
    rng = np.random.default_rng(7)
    places = np.linspace(0, len(data) - 16, 16).astype(int).tolist()
    places += rng.integers(0, 2000, 4).tolist() + (len(data) - rng.integers(16, 2000, 4)).tolist()
    path = tmp_path / f"damaged.{fmt}"
    outcomes = {"refused": 0, "read": 0}
    for place in places:
        damaged = bytearray(data)
        damaged[place : place + 16] = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
        path.write_bytes(bytes(damaged))
        try:
            load_single_file(path)
            outcomes["read"] += 1
        except CheckpointError as error:
            _assert_actionable(error)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == 24


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "prefix",
    [b"", b"PK\x03\x04", b"\x80\x02", b"\x80\x05", struct.pack("<Q", 64) + b"{", b"\x00" * 8],
    ids=["plain", "zip-magic", "pickle2", "pickle5", "st-header", "zero-len"],
)
def test_random_bytes_behind_every_magic(engine, tmp_path, prefix, seed):
    rng = np.random.default_rng(seed)
    body = rng.integers(0, 256, int(rng.integers(0, 5000)), dtype=np.uint8).tobytes()
    path = tmp_path / "random.safetensors"
    path.write_bytes(prefix + body)
    _refused(engine, path)


# --- absurd safetensors headers ---------------------------------------------------------------


def _raw(path: Path, header: bytes | dict, data: bytes = b"\0" * 64, length: int | None = None):
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob) if length is None else length) + blob + data)


def _entry(dtype="F32", shape=(4,), offsets=(0, 16)) -> dict:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


KEY = UNET_PREFIX + "out.2.bias"
ABSURD_HEADERS = {
    "length-max": (b"{}", 2**64 - 1),
    "length-past-end": (b'{"a": 1}', 10_000),
    "length-over-limit": (b"{" + b" " * 100, 200 * 1024 * 1024),
    "nested-deep": (b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", None),
    "not-utf8": (b'{"\xff\xfe": 1}', None),
    "json-list": (b"[1, 2, 3]", None),
    "json-null": (b"null", None),
    "json-string": (b'"weights"', None),
    "trailing-garbage": (b'{"a": {}} trailing', None),
    "cut-json": (b'{"a": {"dtype": "F3', None),
    "entry-not-dict": ({KEY: [1, 2]}, None),
    "no-offsets": ({KEY: {"dtype": "F32", "shape": [4]}}, None),
    "no-dtype": ({KEY: {"shape": [4], "data_offsets": [0, 16]}}, None),
    "unknown-dtype": ({KEY: _entry(dtype="Q7")}, None),
    "shape-string": ({KEY: _entry(shape="4")}, None),
    "shape-negative": ({KEY: _entry(shape=(-4,))}, None),
    "shape-float": ({KEY: _entry(shape=(4.0,))}, None),
    "shape-bool": ({KEY: _entry(shape=(True,))}, None),
    "shape-huge": ({KEY: _entry(shape=(2**40, 2**40))}, None),
    "shape-product-huge": ({KEY: _entry(shape=(2**30, 2**30, 2**30))}, None),
    "shape-vs-bytes": ({KEY: _entry(shape=(100,))}, None),
    "offsets-reversed": ({KEY: _entry(offsets=(16, 0))}, None),
    "offsets-negative": ({KEY: _entry(offsets=(-16, 0))}, None),
    "offsets-float": ({KEY: _entry(offsets=(0.0, 16.0))}, None),
    "offsets-three": ({KEY: _entry(offsets=(0, 8, 16))}, None),
    "offsets-past-end": ({KEY: _entry(offsets=(0, 10_000))}, None),
    "offsets-2^64": ({KEY: _entry(offsets=(2**64 - 16, 2**64))}, None),
    "overlap": ({KEY: _entry(shape=(8,), offsets=(0, 32)), "b": _entry(offsets=(16, 32))}, None),
    "same-bytes": ({KEY: _entry(), "b": _entry()}, None),
    "gap": ({KEY: _entry(offsets=(16, 32))}, None),
    "metadata-not-strings": ({"__metadata__": {"a": 1}, KEY: _entry()}, None),
}


@pytest.mark.parametrize("name", list(ABSURD_HEADERS))
def test_absurd_headers(engine, tmp_path, name):
    header, length = ABSURD_HEADERS[name]
    path = tmp_path / "absurd.safetensors"
    _raw(path, header, length=length)
    _refused(engine, path)


# --- wrong dtypes, NaN weights -----------------------------------------------------------------

WRONG_DTYPES = [torch.int8, torch.uint8, torch.int32, torch.int64, torch.bool, torch.complex64]
TARGETS = [UNET_PREFIX + "out.2.weight", VAE_PREFIX + "decoder.conv_out.weight"]
TARGETS += [CLIP_PREFIX + "final_layer_norm.weight"]


@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
@pytest.mark.parametrize("index", range(len(WRONG_DTYPES)))
def test_integer_bool_complex_weights_are_refused_at_load(state, engine, tmp_path, fmt, index):
    dtype, key = WRONG_DTYPES[index], TARGETS[index % len(TARGETS)]  # each network in turn
    bad = dict(state)
    bad[key] = (state[key] * 10).to(dtype)
    error = _refused(engine, write_ckpt(bad, tmp_path / f"wrong.{fmt}"))
    assert isinstance(error, CorruptCheckpointError)
    assert key in str(error) and "floating point" in str(error)


def _generate_once(engine: Engine) -> np.ndarray:
    req = GenerationRequest("a lighthouse", width=64, height=64, steps=1, seed=1, sampler="euler")
    return engine.generate(req).images[0].image


@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.float8_e5m2, torch.float64])
def test_float8_and_float64_weights_load_and_generate(state, tmp_path, dtype):
    """Unusual but valid float formats are cast, not refused (fp8-quantised files exist)."""
    path = write_ckpt({k: v.to(dtype) for k, v in state.items()}, tmp_path / "f.safetensors")
    eng = Engine(device="cpu", precision="full")
    eng.load_model(path)
    assert next(eng._bundle.unet.parameters()).dtype == torch.float32
    image = _generate_once(eng)
    assert image.shape == (64, 64, 3) and image.std() > 0


@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
@pytest.mark.parametrize("index", range(len(TARGETS)))
def test_nan_and_inf_weights_are_refused_with_a_reason(state, engine, tmp_path, fmt, index):
    """Decision: refuse at load. Checking costs one sum per tensor (~0.2 s for 2 GB); without
    it the person would get a black picture and no reason."""
    key, value = TARGETS[index], (float("nan"), float("inf"), -float("inf"))[index]
    bad = dict(state)
    bad[key] = state[key].clone()
    bad[key].view(-1)[3] = value
    error = _refused(engine, write_ckpt(bad, tmp_path / f"nan.{fmt}"))
    assert "NaN or infinite" in str(error) and key in str(error) and "black" in str(error)


def test_large_finite_half_weights_are_not_mistaken_for_inf(state, tmp_path):
    """A float16 sum can overflow on finite values: that alone must not refuse a model."""
    half = {k: v.half() for k, v in state.items()}
    key = UNET_PREFIX + "out.2.weight"
    half[key] = torch.full_like(half[key], 60000.0)  # sum far beyond float16's 65504
    sd = load_single_file(write_ckpt(half, tmp_path / "big.safetensors"))
    assert torch.isinf(sd[key].sum()) and torch.isfinite(sd[key]).all()


# --- lone components and other files given as a checkpoint ------------------------------------


def _only(state, *prefixes) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith(prefixes)}


def _lora() -> dict[str, torch.Tensor]:
    base = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    return {
        f"{base}.lora_down.weight": torch.zeros(4, 32),
        f"{base}.lora_up.weight": torch.zeros(32, 4),
        f"{base}.alpha": torch.tensor(4.0),
    }


def _bare(state, prefix) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


PARTS = {
    "lora": lambda s: _lora(),
    "vae": lambda s: _only(s, VAE_PREFIX),
    "vae-bare": lambda s: _bare(s, VAE_PREFIX),
    "text-encoder": lambda s: _only(s, "cond_stage_model."),
    "text-encoder-bare": lambda s: _bare(s, "cond_stage_model.transformer."),
    "unet-bare": lambda s: _bare(s, UNET_PREFIX),
    "vae+text": lambda s: _only(s, VAE_PREFIX, "cond_stage_model."),
    "embedding": lambda s: {"string_to_param.*": torch.zeros(2, 64)},
    "no-vae": lambda s: _only(s, UNET_PREFIX, "cond_stage_model."),
    "no-tensors": lambda s: {},
}


@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
@pytest.mark.parametrize("part", list(PARTS))
def test_parts_and_other_files_are_not_checkpoints(state, engine, tmp_path, fmt, part):
    path = write_ckpt(PARTS[part](state), tmp_path / f"{part}.{fmt}")
    error = _refused(engine, path)
    assert "Stable Diffusion 1.x checkpoint" in str(error) or "complete" in str(error)


# --- pickles that want to run code, in every path that reads a model file ----------------------


class _RunsCode:
    def __init__(self, marker: Path, how: str = "os.system") -> None:
        self.marker, self.how = marker, how

    def __reduce__(self):
        command = f"touch {self.marker}"
        if self.how == "os.system":
            return (os.system, (command,))
        if self.how == "subprocess":
            return (subprocess.call, (["touch", str(self.marker)],))
        if self.how == "exec":
            return (exec, (f"open({str(self.marker)!r}, 'w').close()",))
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


HOWS = ["os.system", "subprocess", "exec", "eval"]


def _evil_payload(state, marker: Path, how: str, wrap: bool = True) -> dict:
    weights = {k: v for k, v in list(state.items())[:3]}
    inner = {**weights, "model.diffusion_model.evil": _RunsCode(marker, how)}
    return {"state_dict": inner} if wrap else inner


def _write_pickle(payload, path: Path, container: str) -> Path:
    if container == "torch-zip":
        torch.save(payload, path)
    elif container == "legacy":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=4))
    return path


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("container", ["torch-zip", "legacy", "raw-pickle"])
@pytest.mark.parametrize("name", ["model.ckpt", "model.pt", "model.safetensors", "model"])
def test_code_running_pickle_never_runs_in_single_files(
    state, engine, tmp_path, how, container, name
):
    marker = tmp_path / "pwned"
    path = _write_pickle(_evil_payload(state, marker, how), tmp_path / name, container)
    error = _refused(engine, path)
    assert isinstance(error, UnsafeCheckpointError) and "not loaded" in str(error)
    assert not marker.exists()


@pytest.mark.parametrize("legacy", [False, True])
def test_renamed_ckpt_loads_by_its_bytes(state, tmp_path, legacy):
    """torch.load picks safetensors by a ".safetensors" name; the bytes must decide."""
    path = tmp_path / "renamed.safetensors"
    torch.save({"state_dict": state}, path, _use_new_zipfile_serialization=not legacy)
    eng = Engine(device="cpu", precision="full")
    assert eng.load_model(path).family == "sd1"


def test_code_in_the_outer_wrapper_never_runs(state, engine, tmp_path):
    """The payload sits beside state_dict (as "callbacks" in Lightning files), not inside it."""
    marker = tmp_path / "pwned"
    payload = {"state_dict": dict(list(state.items())[:3]), "callbacks": _RunsCode(marker)}
    _refused(engine, _write_pickle(payload, tmp_path / "m.ckpt", "torch-zip"))
    assert not marker.exists()


def test_code_in_a_zip_member_named_like_torch_never_runs(state, engine, tmp_path):
    """A hand-made zip whose data.pkl is the evil pickle (no torch.save involved)."""
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(_RunsCode(marker), protocol=2))
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/byteorder", "little")
    path = tmp_path / "handmade.ckpt"
    path.write_bytes(buffer.getvalue())
    _refused(engine, path)
    assert not marker.exists()


def test_code_running_pickle_through_the_cli(state, tmp_path):
    marker = tmp_path / "pwned"
    path = _write_pickle(_evil_payload(state, marker, "os.system"), tmp_path / "m.ckpt", "legacy")
    args = ["txt2img", "--ckpt", str(path), "--outdir", str(tmp_path / "out"), "--H", "64"]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", *args, "--W", "64", "--prompt", "x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and "safetensors" in proc.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()


# --- diffusers folders ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(state, tmp_path_factory) -> Path:
    """A tiny diffusers folder with the same weights as ``state``, written by diffusers."""
    from tests.engine import reference
    from tests.factories import TINY_UNET, TINY_VAE, tiny_clip_config

    pytest.importorskip("diffusers")
    root = tmp_path_factory.mktemp("diffusers") / "tiny-sd"
    reference.diffusers_unet(state, TINY_UNET, TINY_VAE).save_pretrained(root / "unet")
    reference.diffusers_vae(state, TINY_UNET, TINY_VAE).save_pretrained(root / "vae")
    reference.transformers_text_encoder(state, tiny_clip_config()).save_pretrained(
        root / "text_encoder"
    )
    # One component as a pickle, so the damage tests reach the .bin reader too.
    st_file = root / "text_encoder" / "model.safetensors"
    torch.save(load_file(str(st_file)), root / TE_BIN)
    st_file.unlink()
    (root / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    return root


UNET_ST = "unet/diffusion_pytorch_model.safetensors"
VAE_ST = "vae/diffusion_pytorch_model.safetensors"
TE_BIN = "text_encoder/pytorch_model.bin"


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _nan_in_unet(path: Path) -> None:
    sd = load_file(str(path))
    key = next(k for k in sd if k.endswith("conv_out.weight"))
    sd[key] = sd[key] * float("nan")
    save_file(sd, str(path))


def _int_in_vae(path: Path) -> None:
    sd = load_file(str(path))
    sd = {k: (v.to(torch.int8) if k.endswith("conv_out.weight") else v) for k, v in sd.items()}
    save_file(sd, str(path))


FOLDER_DAMAGE = {
    "no-unet-dir": lambda f: shutil.rmtree(f / "unet"),
    "no-vae-weights": lambda f: (f / VAE_ST).unlink(),
    "no-text-encoder-dir": lambda f: shutil.rmtree(f / "text_encoder"),
    "empty-unet-file": lambda f: (f / UNET_ST).write_bytes(b""),
    "truncated-unet": lambda f: _truncate(f / UNET_ST),
    "truncated-text-bin": lambda f: _truncate(f / TE_BIN),
    "garbage-text-bin": lambda f: (f / TE_BIN).write_bytes(os.urandom(3000)),
    "garbage-model-index": lambda f: (f / "model_index.json").write_bytes(b"\xff{not json"),
    "model-index-list": lambda f: (f / "model_index.json").write_text("[]"),
    "garbage-unet-config": lambda f: (f / "unet/config.json").write_text("{{{"),
    "nan-in-unet": lambda f: _nan_in_unet(f / UNET_ST),
    "int-in-vae": lambda f: _int_in_vae(f / VAE_ST),
    "dangling-symlink": lambda f: ((f / UNET_ST).unlink(), (f / UNET_ST).symlink_to(f / "gone")),
    "unet-is-a-folder": lambda f: ((f / UNET_ST).unlink(), (f / UNET_ST).mkdir()),
}


@pytest.mark.parametrize("damage", list(FOLDER_DAMAGE))
def test_damaged_diffusers_folders(folder, engine, tmp_path, damage):
    copy = Path(shutil.copytree(folder, tmp_path / "tiny-sd", symlinks=True))
    FOLDER_DAMAGE[damage](copy)
    _refused(engine, copy)


def _evil_text_bin(folder: Path, marker: Path, how: str) -> None:
    torch.save({"evil": _RunsCode(marker, how)}, folder / TE_BIN)


def _evil_sharded_unet(folder: Path, marker: Path, how: str) -> None:
    (folder / UNET_ST).unlink()
    index = {"weight_map": {"conv_in.weight": "a.bin", "conv_out.weight": "b.bin"}}
    (folder / "unet/diffusion_pytorch_model.bin.index.json").write_text(json.dumps(index))
    torch.save({"conv_in.weight": torch.zeros(1)}, folder / "unet/a.bin")
    torch.save({"conv_out.weight": _RunsCode(marker, how)}, folder / "unet/b.bin")


def _evil_fp16_vae(folder: Path, marker: Path, how: str) -> None:
    (folder / VAE_ST).unlink()
    path = folder / "vae/diffusion_pytorch_model.fp16.bin"
    torch.save({"evil": _RunsCode(marker, how)}, path, _use_new_zipfile_serialization=False)


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("where", [_evil_text_bin, _evil_sharded_unet, _evil_fp16_vae])
def test_code_running_pickle_never_runs_in_diffusers_folders(folder, engine, tmp_path, how, where):
    copy = Path(shutil.copytree(folder, tmp_path / "tiny-sd"))
    marker = tmp_path / "pwned"
    where(copy, marker, how)
    error = _refused(engine, copy)
    assert isinstance(error, UnsafeCheckpointError)
    assert not marker.exists()


def test_intact_folder_still_loads(folder, tmp_path):
    """The damage tests above are meaningful only if the undamaged folder loads and runs."""
    eng = Engine(device="cpu", precision="full")
    assert eng.load_model(folder).family == "sd1"
    assert _generate_once(eng).std() > 0
