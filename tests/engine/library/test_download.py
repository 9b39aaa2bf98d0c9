"""Downloads from a loopback Hugging Face Hub (tests/engine/library/hf_server.py), never the
network: resume, progress, cancel, verification, the hub's refusals, timeouts and settings."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections import namedtuple
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest
from huggingface_hub import constants

from engine.errors import Cancelled, EngineError
from engine.library.cache import known_short_hash
from engine.library.download import (
    PRESETS,
    STAGING_DIR,
    DownloadError,
    DownloadProgress,
    DownloadResult,
    DownloadSpec,
    download,
)
from engine.units import human_size
from tests.engine.library.hf_server import FakeHub, HostedFile
from tests.factories import tiny_sd1_state_dict, write_checkpoint

pytestmark = pytest.mark.timeout(60)

REPO = "latentdesk-tests/tiny-sd1"
FILE = "tiny-sd1.safetensors"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The tiny SD1 checkpoint's bytes, as the hub serves them."""
    path = tmp_path_factory.mktemp("hub") / FILE
    return write_checkpoint(tiny_sd1_state_dict(), path).read_bytes()


@pytest.fixture(autouse=True)
def isolated_hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No token, endpoint, offline switch or proxy of this machine leaks into a test."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE",
                "HF_HUB_DOWNLOAD_TIMEOUT", "HF_OIDC_RESOURCE", "HTTP_PROXY", "HTTPS_PROXY",
                "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    huggingface_hub.close_session()  # the next client reads the proxy settings above
    yield
    huggingface_hub.close_session()


@pytest.fixture
def hub(checkpoint: bytes) -> Iterator[FakeHub]:
    with FakeHub([HostedFile(REPO, FILE, checkpoint)]) as server:
        yield server


@pytest.fixture
def spec(checkpoint: bytes) -> DownloadSpec:
    return DownloadSpec(REPO, FILE, sha256=_sha(checkpoint), size=len(checkpoint))


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "models"


def fetch(hub: FakeHub, spec: DownloadSpec, dest: Path, **kwargs: Any) -> DownloadResult:
    kwargs.setdefault("timeout", 10.0)  # a bug fails the test instead of hanging it
    return download(spec, dest, endpoint=hub.url, **kwargs)


def test_full_download_reports_progress_and_verifies(hub, spec, dest, checkpoint):
    hub.bytes_per_second = len(checkpoint) / 0.6  # long enough for several reports
    events: list[DownloadProgress] = []
    started = time.monotonic()
    result = fetch(hub, spec, dest, on_progress=events.append)
    elapsed = time.monotonic() - started

    assert result.path == dest / FILE
    assert result.path.read_bytes() == checkpoint
    assert result.sha256 == _sha(checkpoint) and result.short_hash == _sha(checkpoint)[:10]
    assert known_short_hash(result.path) == result.short_hash  # the library needs no rehash
    done = [e.done for e in events]
    assert done == sorted(done) and done[0] == 0 and done[-1] == len(checkpoint)
    assert all(e.total == len(checkpoint) for e in events)
    assert 3 <= len(events) <= elapsed / 0.1 + 2  # throttled to ten a second
    assert any(e.rate > 0 and e.seconds_left is not None for e in events)
    assert os.listdir(dest) == [FILE]  # no staging folder left behind


def test_dropped_connection_continues_where_it_stopped(hub, spec, dest, checkpoint):
    hub.cut_at = len(checkpoint) // 2
    result = fetch(hub, spec, dest)

    assert result.path.read_bytes() == checkpoint
    first, second = hub.gets()
    assert "range" not in first.headers
    assert second.headers["range"].startswith("bytes=") and second.headers["range"] != "bytes=0-"
    assert hub.bytes_served < 1.6 * len(checkpoint)


CHILD = """
import sys
from engine.library.download import DownloadSpec, download
print("torch" in sys.modules, flush=True)
repo, file, sha, dest, endpoint = sys.argv[1:]
download(DownloadSpec(repo, file, sha256=sha), dest, endpoint=endpoint, timeout=30)
"""


def test_download_killed_midway_resumes_in_a_new_process(hub, spec, dest, checkpoint):
    hub.stall_at = len(checkpoint) // 2  # the child receives half, then waits
    args = [REPO, FILE, _sha(checkpoint), str(dest), hub.url]
    child = subprocess.Popen([sys.executable, "-c", CHILD, *args], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        partial = _wait_for(lambda: _partial_of_size(dest, len(checkpoint) // 4), child)
    finally:
        child.kill()
        out, _ = child.communicate(timeout=20)
    assert out.split() == [b"False"]  # downloading imports no torch
    hub.stall_at = None
    kept = partial.stat().st_size

    events: list[DownloadProgress] = []
    result = fetch(hub, spec, dest, on_progress=events.append)

    assert result.path.read_bytes() == checkpoint
    assert hub.gets()[-1].headers["range"] == f"bytes={kept}-"
    assert events[0].done == kept  # progress starts where the first process stopped
    assert hub.bytes_served < 1.6 * len(checkpoint)
    assert os.listdir(dest) == [FILE]


def test_cancel_keeps_the_partial_file_and_the_next_call_resumes(hub, spec, dest, checkpoint):
    hub.bytes_per_second = len(checkpoint) / 3
    cancel = threading.Event()

    def cancel_once_data_arrives(progress: DownloadProgress) -> None:
        if progress.done > 0:
            cancel.set()

    with pytest.raises(Cancelled):
        fetch(hub, spec, dest, on_progress=cancel_once_data_arrives, cancel=cancel)
    (partial,) = (dest / STAGING_DIR).glob("*.incomplete")
    kept = partial.stat().st_size
    assert 0 < kept < len(checkpoint)
    assert not (dest / FILE).exists()

    hub.bytes_per_second = None
    result = fetch(hub, spec, dest)
    assert result.path.read_bytes() == checkpoint
    assert hub.gets()[-1].headers["range"] == f"bytes={kept}-"
    assert hub.bytes_served < 1.6 * len(checkpoint)
    assert os.listdir(dest) == [FILE]


def test_wrong_bytes_are_refused_and_nothing_is_left(hub, spec, dest):
    hub.corrupt = True
    with pytest.raises(DownloadError) as refused:
        fetch(hub, spec, dest)
    message = str(refused.value)
    assert spec.sha256 is not None and spec.sha256 in message and "deleted" in message
    assert list(dest.rglob("*")) == []


def test_hub_with_another_version_of_the_file_is_refused_before_downloading(hub, dest):
    other = DownloadSpec(REPO, FILE, sha256="ab" * 32)
    with pytest.raises(DownloadError, match="changed on the hub"):
        fetch(hub, other, dest)
    assert hub.gets() == []


@pytest.mark.parametrize(
    ("repo", "filename", "named"),
    [
        (REPO, "missing.safetensors", ["missing.safetensors", REPO]),
        ("nobody/nothing", FILE, ["nobody/nothing", "not found"]),
    ],
)
def test_not_found_names_what_is_missing(hub, dest, repo, filename, named):
    with pytest.raises(DownloadError) as missing:
        fetch(hub, DownloadSpec(repo, filename), dest)
    assert all(part in str(missing.value) for part in named)
    assert isinstance(missing.value, EngineError)


def test_unknown_revision_is_named(hub, dest):
    with pytest.raises(DownloadError, match="no revision 'v9'"):
        fetch(hub, DownloadSpec(REPO, FILE, revision="v9"), dest)


def test_stalled_transfer_times_out_and_keeps_the_partial_file(hub, spec, dest, checkpoint):
    hub.stall_at = len(checkpoint) // 2
    started = time.monotonic()
    with pytest.raises(DownloadError) as stalled:
        fetch(hub, spec, dest, timeout=0.5)
    assert time.monotonic() - started < 15
    message = str(stalled.value)
    assert "no data for 0.5 s" in message and "start the download again" in message
    (partial,) = (dest / STAGING_DIR).glob("*.incomplete")
    assert partial.stat().st_size > 0


def test_cdn_refusal_mid_download_keeps_the_partial_file(hub, spec, dest, checkpoint):
    hub.cut_at = len(checkpoint) // 2
    hub.bytes_per_second = len(checkpoint) / 1.0  # the cut comes after a progress report

    def expire_the_address(progress: DownloadProgress) -> None:
        if progress.done > 0:
            hub.cdn_status = 403  # the resumed request finds the signed address expired

    with pytest.raises(DownloadError, match=r"stopped the download \(HTTP 403\)") as refused:
        fetch(hub, spec, dest, on_progress=expire_the_address)
    assert "start the download again" in str(refused.value)
    (partial,) = (dest / STAGING_DIR).glob("*.incomplete")
    assert partial.stat().st_size > 0

    hub.cdn_status, hub.bytes_per_second = None, None
    assert fetch(hub, spec, dest).path.read_bytes() == checkpoint


def test_hub_that_does_not_answer_times_out(hub, spec, dest, monkeypatch):
    hub.stall_head_seconds = 20
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "0.5")
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"did not answer within 0\.5 s"):
        download(spec, dest, endpoint=hub.url)
    assert time.monotonic() - started < 10


def test_connection_refused(spec, dest):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(DownloadError, match="Cannot connect to http://127.0.0.1"):
        download(spec, dest, endpoint=f"http://127.0.0.1:{port}", timeout=5)


def test_not_enough_free_space_is_refused_before_downloading(
    hub, spec, dest, checkpoint, monkeypatch
):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("shutil.disk_usage", lambda path: usage(10**12, 10**12 - 1000, 1000))
    with pytest.raises(DownloadError) as refused:
        fetch(hub, spec, dest)
    message = str(refused.value)
    assert "Not enough free space" in message and "only 1.00 kB is free" in message
    assert f"needs {human_size(len(checkpoint))} more in {dest}" in message
    assert hub.gets() == [] and list(dest.rglob("*")) == []


def test_offline_without_the_file_says_so_and_asks_nothing(hub, spec, dest, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE"):
        fetch(hub, spec, dest)
    assert hub.requests == []


def test_a_file_already_there_is_returned_without_the_network(hub, spec, dest, monkeypatch):
    first = fetch(hub, spec, dest)
    asked = len(hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = fetch(hub, spec, dest)
    assert again == first and len(hub.requests) == asked


def test_a_different_file_of_that_name_is_never_replaced(hub, spec, dest):
    dest.mkdir()
    (dest / FILE).write_bytes(b"my own model")
    with pytest.raises(DownloadError, match="different file"):
        fetch(hub, spec, dest)
    assert (dest / FILE).read_bytes() == b"my own model"


def test_hf_endpoint_and_the_hubs_own_hash(hub, dest, checkpoint, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    result = download(DownloadSpec(REPO, FILE), dest, timeout=10)  # no sha256 given
    assert result.sha256 == _sha(checkpoint)


def test_gated_repository_needs_the_token(checkpoint, spec, dest, monkeypatch):
    with FakeHub([HostedFile(REPO, FILE, checkpoint)], token="hf_secret") as hub:
        with pytest.raises(DownloadError, match="HF_TOKEN"):
            fetch(hub, spec, dest)
        with pytest.raises(DownloadError, match="HF_TOKEN"):
            fetch(hub, spec, dest, token="hf_wrong")
        fetch(hub, spec, dest, token="hf_secret")

        head = [r for r in hub.requests if r.server == "hub"][-1]
        assert head.headers["authorization"] == "Bearer hf_secret"
        # The token stays on the hub: the CDN's signed address needs none.
        assert all("authorization" not in r.headers for r in hub.requests if r.server == "cdn")

        (dest / FILE).unlink()
        monkeypatch.setenv("HF_TOKEN", "hf_secret")
        assert fetch(hub, DownloadSpec(REPO, FILE), dest).sha256 == _sha(checkpoint)


def test_a_second_download_of_the_same_file_waits_its_turn(hub, spec, dest, checkpoint):
    hub.bytes_per_second = len(checkpoint) / 1.5
    started = threading.Event()
    results: list[DownloadResult] = []

    def first() -> None:
        results.append(fetch(hub, spec, dest, on_progress=lambda p: p.done and started.set()))

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(20)
    with pytest.raises(DownloadError, match="already being downloaded"):
        fetch(hub, spec, dest)
    thread.join(30)
    assert results and results[0].path.read_bytes() == checkpoint


def test_presets():
    sd15 = PRESETS["stable-diffusion-1.5"]
    assert (sd15.repo_id, sd15.filename) == (
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "v1-5-pruned-emaonly.safetensors",
    )
    assert sd15.size == 4_265_146_304 and sd15.sha256 is not None
    assert sd15.sha256.startswith("6ce0161689")
    inpainting = PRESETS["stable-diffusion-1.5-inpainting"]
    assert inpainting.filename == "sd-v1-5-inpainting.ckpt"
    assert inpainting.sha256 is not None and inpainting.sha256.startswith("c6bbc15e32")


def test_spec_rejects_a_malformed_sha256():
    with pytest.raises(DownloadError, match="64 hexadecimal digits"):
        DownloadSpec(REPO, FILE, sha256="6ce0161689")
    assert DownloadSpec(REPO, FILE, sha256="AB" * 32).sha256 == "ab" * 32


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _partial_of_size(dest: Path, at_least: int) -> Path | None:
    for partial in (dest / STAGING_DIR).glob("*.incomplete"):
        if partial.stat().st_size >= at_least:
            return partial
    return None


def _wait_for(found: Callable[[], Path | None], child: subprocess.Popen[bytes]) -> Path:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and child.poll() is None:
        if (result := found()) is not None:
            return result
        time.sleep(0.05)
    raise AssertionError(f"no partial download appeared (child exit code {child.poll()})")
