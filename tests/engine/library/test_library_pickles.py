"""Pickled checkpoints are read opcode by opcode, never unpickled: a hostile one never runs, and
the tensor names and sizes still come out."""

from __future__ import annotations

import io
import pickle
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from engine.library import classify_file
from engine.library.pickle_scan import Global, UnreadablePickle, read_pickle, state_dict_shapes
from tests.engine.library.fake_models import (
    RunsCode,
    unpickle_carelessly,
    write_hostile_ckpt,
    write_tiny_sd1,
)
from tests.factories import tiny_sd1_state_dict

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def no_unpickling(monkeypatch):
    """Every way of unpickling fails the test if anything calls it."""

    def refuse(*args, **kwargs):
        raise AssertionError("something unpickled a file while classifying it")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)


def _assert_hostile(path: Path, marker: Path) -> None:
    """Prove the fixture is real: unpickled carelessly (in a child process) it runs."""
    code = (
        "import sys; from pathlib import Path; "
        "from tests.engine.library.fake_models import unpickle_carelessly; "
        "unpickle_carelessly(Path(sys.argv[1]))"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, check=False)
    assert marker.exists(), "the hostile fixture did not run when unpickled"
    marker.unlink()


def test_hostile_checkpoint_is_classified_without_running(tmp_path, no_unpickling) -> None:
    marker = tmp_path / "marker"
    path = write_hostile_ckpt(tmp_path / "models" / "evil.ckpt", marker)
    _assert_hostile(path, marker)
    found = classify_file(path)
    assert not marker.exists()
    assert "unsafe pickle" in found.problem and "builtins.exec" in found.problem
    assert "nothing in it was run" in found.problem


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_code_running_pickles_of_every_protocol_are_named_not_run(tmp_path, protocol) -> None:
    marker = tmp_path / "marker"
    data = pickle.dumps({"x": RunsCode(marker)}, protocol=protocol)
    summary = read_pickle(io.BytesIO(data))
    assert Global("builtins", "exec") in summary.unsafe_globals()
    assert not marker.exists()
    ckpt = _zip_with_pickle(tmp_path / "evil.ckpt", data)
    assert "builtins.exec" in classify_file(ckpt).problem
    assert not marker.exists()


def test_old_opcodes_inst_and_obj_are_records_too(tmp_path) -> None:
    marker = tmp_path / "marker"
    payload = f"open({str(marker)!r}, 'w').close()"
    inst = f"(V{payload}\nibuiltins\nexec\n.".encode()
    obj = b"(cbuiltins\nexec\nV" + payload.encode() + b"\no."
    for data in (inst, obj):
        summary = read_pickle(io.BytesIO(data))
        assert [str(g) for g in summary.unsafe_globals()] == ["builtins.exec"]
    assert not marker.exists()
    pickle.loads(inst)  # the same bytes really run when unpickled (marker: inside tmp_path)
    assert marker.exists()


def test_tensor_sizes_of_a_torch_checkpoint_are_read_exactly(tmp_path) -> None:
    sd = tiny_sd1_state_dict(inpainting=True)
    path = write_tiny_sd1(tmp_path / "tiny.ckpt", inpainting=True)
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
        summary = read_pickle(io.BytesIO(archive.read(name)))
    assert state_dict_shapes(summary.obj) == {k: tuple(v.shape) for k, v in sd.items()}
    assert summary.unsafe_globals() == []


def test_parameters_and_nested_dicts(tmp_path) -> None:
    obj = {"string_to_param": {"*": torch.nn.Parameter(torch.zeros(2, 768))}, "step": 3}
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=False)
    buffer.seek(0)
    for _ in range(3):  # magic number, protocol, system info
        read_pickle(buffer)
    assert state_dict_shapes(read_pickle(buffer).obj) == {"string_to_param.*": (2, 768)}


def test_damaged_pickles_raise_only_unreadable(tmp_path) -> None:
    """Random bytes flipped in a real data.pkl: a clean refusal or a result, nothing else."""
    path = write_tiny_sd1(tmp_path / "tiny.ckpt")
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    rng = random.Random(0)
    refused = 0
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        cut = rng.randint(1, len(damaged))
        try:  # any other exception fails the test
            state_dict_shapes(read_pickle(io.BytesIO(bytes(damaged[:cut]))).obj)
        except UnreadablePickle:
            refused += 1
    assert refused > 0  # the damage reached the parser: the loop tested something
    assert state_dict_shapes(read_pickle(io.BytesIO(data)).obj)  # and the intact one reads


def test_the_careless_loader_helper_really_unpickles(tmp_path) -> None:
    marker = tmp_path / "marker"
    unpickle_carelessly(write_hostile_ckpt(tmp_path / "evil.ckpt", marker))
    assert marker.exists()


def _zip_with_pickle(path: Path, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("evil/data.pkl", data)
        archive.writestr("evil/version", "3\n")
    return path
