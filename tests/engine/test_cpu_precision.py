"""The CPU's precision is chosen by timing, remembered per CPU and torch version."""

from __future__ import annotations

import json
import time

import pytest
import torch

from engine.cpu_precision import (
    CACHE_FILE,
    CpuTimings,
    cache_file,
    cache_key,
    choose,
    cpu_model,
    cpu_precision,
    measure_cpu,
)
from engine.devices import choose_precision, pick_dtype
from engine.host import Host
from tests.fake_host import FakeHost

# The two CPUs, as seconds per operation (1024² matmul: 2.15 GFLOP).
ZEN4 = CpuTimings(2.15 / 137, 2.15 / 383, 0.010, 0.004)
XEON_NO_AMX = CpuTimings(2.15 / 129, 2.15 / 81, 0.010, 0.016)
CPUINFO = "processor\t: 0\nmodel name\t: AMD EPYC 9454\nflags\t\t: fpu avx512_bf16\n"


def test_bfloat16_when_it_is_clearly_faster():
    dtype, reason = choose(ZEN4)
    assert dtype == "bfloat16"
    assert "2.80x" in reason and "2.50x" in reason and "(2.67x together)" in reason


def test_float32_when_bfloat16_is_slower_despite_the_flags():
    dtype, reason = choose(XEON_NO_AMX)
    assert dtype == "float32" and "0.63x" in reason


def test_a_step_is_judged_by_both_operations_together():
    # The matmul gains 2x but the convolution loses: together 1.18x, not enough.
    dtype, reason = choose(CpuTimings(0.010, 0.005, 0.010, 0.012))
    assert dtype == "float32" and "(1.18x together)" in reason and "1.2x" in reason
    # A convolution gaining only 1.11x is carried by a matmul gaining 2.5x.
    assert choose(CpuTimings(0.010, 0.004, 0.010, 0.009))[0] == "bfloat16"


def test_float32_when_the_conv_was_not_worth_timing_or_nothing_could_be_timed():
    assert choose(CpuTimings(0.010, 0.020, 0.010, None))[0] == "float32"
    assert choose(None) == ("float32", "bfloat16 could not be timed on this CPU")


def _never():
    raise AssertionError("measured although the answer was cached")


def test_a_cached_answer_is_not_measured_again(tmp_path):
    host = FakeHost(files={"/proc/cpuinfo": CPUINFO})
    calls = []

    def fake_measure():
        calls.append(1)
        return ZEN4

    first = cpu_precision(tmp_path, fake_measure, host)
    second = cpu_precision(tmp_path, _never, host)
    assert calls == [1]
    assert (first.dtype, first.cached, second.dtype, second.cached) == (
        "bfloat16",
        False,
        "bfloat16",
        True,
    )
    entries = json.loads((tmp_path / CACHE_FILE).read_text())
    key = cache_key(host, torch.__version__)
    assert key.startswith("AMD EPYC 9454 | flags ") and key.endswith(f"torch {torch.__version__}")
    assert entries[key]["matmul_bfloat16"] == ZEN4.matmul_bfloat16


def test_another_cpu_or_torch_is_measured_anew(tmp_path):
    cpu_precision(tmp_path, lambda: ZEN4, FakeHost(files={"/proc/cpuinfo": CPUINFO}))
    same_name = CPUINFO.replace("avx512_bf16", "avx2")  # VMs call many CPUs "AMD EPYC"
    other = cpu_precision(
        tmp_path, lambda: XEON_NO_AMX, FakeHost(files={"/proc/cpuinfo": same_name})
    )
    assert (other.dtype, other.cached) == ("float32", False)
    assert len(json.loads((tmp_path / CACHE_FILE).read_text())) == 2
    host = FakeHost(files={"/proc/cpuinfo": CPUINFO})
    assert cache_key(host, "2.13.0") != cache_key(host, "2.14.0")


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2]", '{"%s": {"matmul_float32": "fast"}}', '{"%s": {"matmul_float32": -1}}'],
)
def test_a_corrupt_cache_is_measured_and_rewritten(tmp_path, content):
    host = FakeHost(files={"/proc/cpuinfo": CPUINFO})
    key = cache_key(host, torch.__version__)
    (tmp_path / CACHE_FILE).write_text(content.replace("%s", key))
    result = cpu_precision(tmp_path, lambda: XEON_NO_AMX, host)
    assert (result.dtype, result.cached) == ("float32", False)
    assert json.loads((tmp_path / CACHE_FILE).read_text())[key]["conv_bfloat16"] == 0.016


def test_an_unwritable_cache_only_costs_a_measurement(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    result = cpu_precision(blocked, lambda: ZEN4, FakeHost(files={"/proc/cpuinfo": CPUINFO}))
    assert result.dtype == "bfloat16"


def test_the_real_measurement_is_quick_and_sane():
    start = time.perf_counter()
    timings = measure_cpu()
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, elapsed
    assert timings is not None
    assert all(v is None or 0 < v < 1 for v in vars(timings).values())
    assert timings.gflops()["matmul_float32"] > 1


def test_explicit_precision_never_measures(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTDESK_CPU_PRECISION_FILE", str(tmp_path / CACHE_FILE))
    cpu = torch.device("cpu")
    assert pick_dtype(cpu, "full") == torch.float32
    assert pick_dtype(cpu, "bfloat16") == torch.bfloat16
    assert choose_precision(cpu, "float32").reason == "--precision float32"
    assert not any(tmp_path.rglob(CACHE_FILE))


@pytest.mark.parametrize(
    ("timings", "dtype"), [(ZEN4, torch.bfloat16), (XEON_NO_AMX, torch.float32)]
)
def test_auto_on_the_cpu_follows_the_cached_measurement(tmp_path, timings, dtype):
    key = cache_key(Host(), torch.__version__)  # the key choose_precision itself will use
    (tmp_path / CACHE_FILE).write_text(json.dumps({key: vars(timings)}))
    choice = choose_precision(torch.device("cpu"), "auto", cache_dir=tmp_path)
    assert choice.dtype == dtype and "float32 speed" in choice.reason


def test_cpu_model_names():
    assert cpu_model(FakeHost(files={"/proc/cpuinfo": CPUINFO})) == "AMD EPYC 9454"
    mac = FakeHost(platform="darwin", programs={"sysctl": lambda argv: (0, "Apple M2\n")})
    assert cpu_model(mac) == "Apple M2"


def test_the_cache_file_follows_the_cache_folder_or_the_override(tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTDESK_CPU_PRECISION_FILE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_file() == tmp_path / "xdg" / "latentdesk" / CACHE_FILE
    monkeypatch.setenv("LATENTDESK_CPU_PRECISION_FILE", str(tmp_path / "shared.json"))
    assert cache_file() == tmp_path / "shared.json"
    assert cache_file(tmp_path / "explicit") == tmp_path / "explicit" / CACHE_FILE
