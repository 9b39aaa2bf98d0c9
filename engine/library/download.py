"""Download a model file from the Hugging Face Hub: resumable, verified, cancellable, no torch.

The flow of ``download``: a file already in the folder with the right sha256 is returned at once;
otherwise one HEAD request to the hub gives the file's size, its sha256 (the ETag of an LFS
file) and where the bytes live (usually a CDN address it redirects to). The bytes are appended to
``<dest_dir>/.downloads/<file>.<sha256>.incomplete`` while their sha256 is computed on the fly,
so an interrupted download - a dropped connection, a cancel, a crash, the app closed - continues
from that file's length with an HTTP ``Range`` request the next time. Only a file whose hash
matches is moved (atomically, never over another file) into ``dest_dir``; a mismatch deletes it.

Why not ``huggingface_hub.hf_hub_download``: since huggingface_hub 2.x it streams into a temporary
file with a random name and deletes that file whenever the download fails
(``file_download._download_to_tmp_and_move``), so it resumes only within one call
(``file_download.http_get`` retries with ``Range`` on a dropped connection) and a 4 GB download
broken off at 90 % starts over. This module uses the same library's parts instead: the metadata
request (``get_hf_file_metadata``), its HTTP session with back-off (``http_stream_backoff``), its
error mapping (``hf_raise_for_status``) and its token and header handling (``build_hf_headers``).

Settings read at each call (so they work whether set before or after import): ``HF_ENDPOINT``
(a mirror), ``HF_TOKEN`` (or the token saved by ``hf auth login``), ``HF_HUB_OFFLINE``, and
``HF_HUB_DOWNLOAD_TIMEOUT`` (seconds without data before a request is abandoned).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import urlsplit

import filelock
import httpx2
from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import build_hf_headers, hf_raise_for_status, http_stream_backoff

from engine.errors import Cancelled, EngineError
from engine.library.cache import remember_short_hash
from engine.library.hashing import sha256_file
from engine.units import human_size

STAGING_DIR = ".downloads"  # inside dest_dir: same file system, so the final rename is atomic
PROGRESS_INTERVAL = 0.1  # seconds between progress reports (at most 10 a second)
RATE_WINDOW = 50  # progress reports the transfer rate is averaged over (about 5 s)
DEFAULT_TIMEOUT = float(constants.DEFAULT_DOWNLOAD_TIMEOUT)  # seconds without data
TRIES_WITHOUT_DATA = 3  # consecutive requests that bring no byte before giving up
_RETRY_STATUS = (429, 500, 502, 503, 504)  # answered by huggingface_hub's back-off
_TRANSIENT = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)
_SHA256 = re.compile(r"[0-9a-f]{64}")


class DownloadError(EngineError):
    """A download failed or was refused; the message says why and what to do."""


@dataclass(frozen=True)
class DownloadSpec:
    """One file of a hub repository, and what it must hash to."""

    repo_id: str
    filename: str  # path inside the repository
    revision: str = "main"  # branch, tag or commit
    sha256: str | None = None  # expected; None: trust the hub's own LFS hash of the file
    size: int | None = None  # bytes; checked against the hub's, used when the hub does not say
    name: str | None = None  # what people see ("Stable Diffusion 1.5"); default: file name

    def __post_init__(self) -> None:
        if self.sha256 is not None:
            sha = self.sha256.strip().lower()
            if not _SHA256.fullmatch(sha):
                raise DownloadError(f"A sha256 has 64 hexadecimal digits; {self.sha256!r} is not.")
            object.__setattr__(self, "sha256", sha)
        if self.file_name in ("", ".", "..") or "\\" in self.file_name:
            raise DownloadError(f"{self.filename!r} is not a file name inside a repository.")

    @property
    def file_name(self) -> str:
        """The name the file gets in the models folder: the last part of ``filename``."""
        return PurePosixPath(self.filename).name

    @property
    def label(self) -> str:
        return self.name or self.file_name


PRESETS: dict[str, DownloadSpec] = {
    "stable-diffusion-1.5": DownloadSpec(
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "v1-5-pruned-emaonly.safetensors",
        sha256="6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa",
        size=4265146304,
        name="Stable Diffusion 1.5",
    ),
    # The hub's page of this file shows the sha256 (huggingface.co/stable-diffusion-v1-5/
    # stable-diffusion-inpainting/blob/main/sd-v1-5-inpainting.ckpt); the byte count is the
    # size in the LFS pointer of that same sha256. A pickle: loaded with weights_only=True.
    "stable-diffusion-1.5-inpainting": DownloadSpec(
        "stable-diffusion-v1-5/stable-diffusion-inpainting",
        "sd-v1-5-inpainting.ckpt",
        sha256="c6bbc15e3224e6973459ba78de4998b80b50112b0ae5b5c67113d56b4e366b19",
        size=4265437280,
        name="Stable Diffusion 1.5 Inpainting",
    ),
}


@dataclass(frozen=True)
class DownloadProgress:
    done: int  # bytes on disk, including those of an earlier, interrupted attempt
    total: int | None  # bytes; None when neither the spec nor the hub says
    rate: float  # bytes per second over the last few seconds
    seconds_left: float | None  # None until a rate and the total are known


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    sha256: str
    short_hash: str  # A1111's "Model hash": the first 10 hex digits of the sha256


DownloadCallback = Callable[[DownloadProgress], None]


def download(
    spec: DownloadSpec,
    dest_dir: Path | str,
    *,
    on_progress: DownloadCallback | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    timeout: float | None = None,
) -> DownloadResult:
    """Download ``spec`` into ``dest_dir`` and return where it is, with its sha256.

    Blocks: run it on its own thread. ``on_progress`` is called on that thread, at most ten times
    a second. Setting ``cancel`` raises ``Cancelled`` within one network read (at most
    ``timeout`` seconds while the server sends nothing); the partial data stays for a later call.
    ``endpoint``, ``token`` and ``timeout`` override ``HF_ENDPOINT``, ``HF_TOKEN`` and
    ``HF_HUB_DOWNLOAD_TIMEOUT``. Raises ``DownloadError`` with a message a person can act on.
    """
    dest_dir = Path(dest_dir)
    target = dest_dir / spec.file_name
    hub = _Hub.from_settings(endpoint, token, timeout)
    try:
        if spec.sha256 and target.exists():  # needs no network, so works offline too
            return _existing(target, spec.sha256)
        if _offline():
            return _offline_result(target, spec)
        location, sha256, total = _ask_hub(hub, spec)
        if target.exists():
            return _existing(target, sha256)
        _make_folder(dest_dir)
        with _Staging(dest_dir, spec, sha256) as part:
            _check_free_space(dest_dir, spec, total, part.size)
            _fetch(hub, location, part, total, _Meter(part.size, total, on_progress), cancel)
            return _finish(part, target, spec, sha256, total)
    except (HfHubHTTPError, OfflineModeIsEnabled, httpx2.HTTPError) as exc:
        raise _hub_error(exc, spec, hub) from exc
    except OSError as exc:  # the disk: full, read-only, permissions
        raise DownloadError(f"Cannot download {spec.file_name} into {dest_dir}: {exc}") from exc


# --- the hub ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hub:
    endpoint: str
    token: str | None
    timeout: float

    @classmethod
    def from_settings(cls, endpoint: str | None, token: str | None, timeout: float | None) -> _Hub:
        endpoint = endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
        if timeout is None:
            timeout = _env_float("HF_HUB_DOWNLOAD_TIMEOUT") or DEFAULT_TIMEOUT
        return cls(endpoint.rstrip("/"), token, timeout)

    def headers(self, url: str) -> dict[str, str]:
        """Headers for fetching ``url``: the token only while it stays on the hub's host."""
        headers = build_hf_headers(token=self.token, library_name="latentdesk")
        headers["Accept-Encoding"] = "identity"  # byte offsets must be those of the file
        if _origin(url) != _origin(self.endpoint):
            headers.pop("authorization", None)  # a signed CDN address needs no token
        return headers


def _ask_hub(hub: _Hub, spec: DownloadSpec) -> tuple[str, str | None, int | None]:
    """Where the bytes are, their sha256 and their size, checked against what the spec expects."""
    url = hf_hub_url(spec.repo_id, spec.filename, revision=spec.revision, endpoint=hub.endpoint)
    meta = get_hf_file_metadata(
        url, token=hub.token, timeout=hub.timeout, library_name="latentdesk", endpoint=hub.endpoint
    )
    hub_sha = meta.etag if meta.etag and _SHA256.fullmatch(meta.etag) else None
    where = f"{spec.file_name} in {spec.repo_id} (revision {spec.revision})"
    if spec.sha256 and hub_sha and hub_sha != spec.sha256:
        raise DownloadError(
            f"The hub's {where} has sha256 {hub_sha}, not the expected {spec.sha256}: the file "
            "changed on the hub. Pick the revision that has the expected file, or give the new "
            "sha256 if you trust it."
        )
    if spec.size and meta.size and spec.size != meta.size:
        raise DownloadError(
            f"The hub's {where} has {meta.size:,} bytes, not the expected {spec.size:,}: the file "
            "changed on the hub. Pick the revision that has the expected file."
        )
    return meta.location, spec.sha256 or hub_sha, meta.size or spec.size


def _hub_error(exc: Exception, spec: DownloadSpec, hub: _Hub) -> DownloadError:
    """Say what went wrong talking to the hub, in terms of what to do next."""
    if isinstance(exc, HfHubHTTPError):
        return DownloadError(_refusal_text(exc, spec, hub.endpoint))
    if isinstance(exc, OfflineModeIsEnabled):
        return DownloadError(_offline_text(spec))
    if isinstance(exc, httpx2.TimeoutException):
        return DownloadError(
            f"{hub.endpoint} did not answer within {hub.timeout:g} s. Try again later, or set "
            "HF_HUB_DOWNLOAD_TIMEOUT to wait longer."
        )
    if isinstance(exc, httpx2.ConnectError):
        return DownloadError(
            f"Cannot connect to {hub.endpoint} ({exc}). Check the internet connection, and "
            "HF_ENDPOINT if you use a mirror."
        )
    return DownloadError(f"Network error downloading {spec.file_name} from {hub.endpoint}: {exc}")


def _refusal_text(exc: HfHubHTTPError, spec: DownloadSpec, endpoint: str) -> str:
    repo, page = spec.repo_id, f"{endpoint}/{spec.repo_id}"
    token = "set HF_TOKEN to an access token of an account that may read it"
    if isinstance(exc, GatedRepoError):
        return f"{repo} is gated: accept its conditions on {page} while logged in, then {token}."
    if isinstance(exc, RepositoryNotFoundError):
        return (
            f"Repository {repo} was not found on {endpoint}. Check its name; if it is private "
            f"or gated, {token}."
        )
    if isinstance(exc, RevisionNotFoundError):
        return f"{repo} has no revision {spec.revision!r}: use one of its branches, tags, commits."
    if isinstance(exc, RemoteEntryNotFoundError):
        return (
            f"{repo} has no file {spec.filename!r} at revision {spec.revision!r}. Check the name "
            f"(upper and lower case count) in the file list on {page}."
        )
    status = exc.response.status_code
    if status in (401, 403):
        return (
            f"The hub refused access to {spec.filename} of {repo} (HTTP {status}): {token}, and "
            f"accept the model's conditions on {page} if it has any."
        )
    return f"{endpoint} answered HTTP {status} for {spec.filename}. Try again later."


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


# --- offline and files already there ------------------------------------------------------------


def _offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return constants.is_offline_mode() or value.strip().upper() in ("1", "ON", "YES", "TRUE")


def _offline_text(spec: DownloadSpec) -> str:
    return (
        f"Cannot download {spec.label}: HF_HUB_OFFLINE is set, so Latentdesk may not use the "
        "network. Unset HF_HUB_OFFLINE to download it, or copy the file into the models folder."
    )


def _offline_result(target: Path, spec: DownloadSpec) -> DownloadResult:
    if target.exists():  # no expected hash to check it against
        return _existing(target, None)
    raise DownloadError(_offline_text(spec))


def _existing(target: Path, sha256: str | None) -> DownloadResult:
    """The file already in the folder, if it is the expected one; never replaced."""
    actual = sha256_file(target)
    if sha256 is not None and actual != sha256:
        raise DownloadError(
            f"{target} already exists and is a different file (sha256 {actual}, expected "
            f"{sha256}). Move or rename it, then download again."
        )
    return _result(target, actual)


def _result(path: Path, sha256: str) -> DownloadResult:
    """The answer, with the short hash put where the library finds it (no rehash on a scan)."""
    result = DownloadResult(path, sha256, sha256[:10])
    remember_short_hash(path, result.short_hash)
    return result


def _make_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise DownloadError(f"{folder} is a file, not a folder: choose a folder to download into.")
    folder.mkdir(parents=True, exist_ok=True)


def _check_free_space(folder: Path, spec: DownloadSpec, total: int | None, have: int) -> None:
    if total is None:
        return
    needed, free = total - have, shutil.disk_usage(folder).free
    if free < needed:
        raise DownloadError(
            f"Not enough free space for {spec.label}: it needs {human_size(needed)} more in "
            f"{folder}, but only {human_size(free)} is free. Free some space or choose another "
            "folder."
        )


def _env_float(name: str) -> float | None:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return None
    return value if value > 0 else None


# --- the staged, partial file -------------------------------------------------------------------


class _Partial:
    """The bytes downloaded so far, on disk, and the running sha256 of them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self.hasher = hashlib.sha256()
        if path.exists():  # left by an earlier attempt: continue after it
            with path.open("rb") as f:
                while block := f.read(1 << 20):
                    self.append_hashed(block)

    def append_hashed(self, block: bytes) -> None:
        self.hasher.update(block)
        self.size += len(block)

    def write(self, f: BinaryIO, block: bytes) -> None:
        f.write(block)
        self.append_hashed(block)

    def restart(self) -> None:
        self.path.write_bytes(b"")
        self.size, self.hasher = 0, hashlib.sha256()

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class _Staging:
    """The partial file of one download, locked so that a second window or command cannot
    append to it at the same time. Named by content, so a new version never continues an old."""

    def __init__(self, dest_dir: Path, spec: DownloadSpec, sha256: str | None) -> None:
        key = sha256 or "unverified"
        self.staging = dest_dir / STAGING_DIR
        self.base = self.staging / f"{spec.file_name}.{key}"
        self.spec = spec
        self.lock = filelock.FileLock(f"{self.base}.lock", timeout=0)

    def __enter__(self) -> _Partial:
        self.staging.mkdir(exist_ok=True)
        try:
            self.lock.acquire()
        except filelock.Timeout:
            raise DownloadError(
                f"{self.spec.label} is already being downloaded into {self.staging.parent} by "
                "another Latentdesk window or command. Wait for that download to finish."
            ) from None
        try:
            self.part = _Partial(Path(f"{self.base}.incomplete"))
        except BaseException:
            self.lock.release()
            raise
        return self.part

    def __exit__(self, *exc_info: object) -> None:
        self.lock.release()
        if not self.part.path.exists():  # finished or refused: leave nothing behind
            Path(self.lock.lock_file).unlink(missing_ok=True)
            _remove_if_empty(self.staging)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # still holds other downloads


# --- transfer -----------------------------------------------------------------------------------


class _Meter:
    """Turns byte counts into at most ten ``DownloadProgress`` reports a second."""

    def __init__(self, done: int, total: int | None, report: DownloadCallback | None) -> None:
        self.total, self.report = total, report
        self.samples: deque[tuple[float, int]] = deque(maxlen=RATE_WINDOW)
        self.last = -PROGRESS_INTERVAL
        self.update(done, force=True)

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if self.report is None or (now - self.last < PROGRESS_INTERVAL and not force):
            return
        self.last = now
        self.samples.append((now, done))
        t0, done0 = self.samples[0]
        rate = (done - done0) / (now - t0) if now > t0 else 0.0
        left = (self.total - done) / rate if self.total is not None and rate > 0 else None
        self.report(DownloadProgress(done, self.total, rate, left))


def _fetch(
    hub: _Hub,
    url: str,
    part: _Partial,
    total: int | None,
    meter: _Meter,
    cancel: threading.Event | None,
) -> None:
    """Append the rest of the file to ``part``, continuing after dropped connections as long as
    data keeps coming; give up after ``TRIES_WITHOUT_DATA`` requests in a row bring none."""
    if total is not None and part.size > total:
        part.restart()  # longer than the file: not a prefix of it
    tries_without_data = 0
    while total is None or part.size < total:
        start = part.size
        try:
            _get_rest(hub, url, part, meter, cancel)
            if total is None or part.size >= total:
                break
            problem = "the server ended the transfer early"
        except _TRANSIENT as exc:
            problem = _transfer_problem(exc, hub)
        except HfHubHTTPError as exc:  # e.g. the signed CDN address expired
            raise DownloadError(
                f"{urlsplit(url).hostname} stopped the download (HTTP "
                f"{exc.response.status_code}). The {human_size(part.size)} downloaded so far are "
                "kept: start the download again to continue where it stopped."
            ) from exc
        tries_without_data = 0 if part.size > start else tries_without_data + 1
        if tries_without_data >= TRIES_WITHOUT_DATA:
            raise DownloadError(
                f"Downloading from {urlsplit(url).hostname} failed: {problem}. The "
                f"{human_size(part.size)} downloaded so far are kept: start the download again to "
                "continue where it stopped."
            )
        _pause(0.5 * tries_without_data, cancel)
    meter.update(part.size, force=True)


def _get_rest(
    hub: _Hub, url: str, part: _Partial, meter: _Meter, cancel: threading.Event | None
) -> None:
    """One GET of the bytes after ``part.size``, appended as they arrive."""
    headers = hub.headers(url)
    if part.size:
        headers["Range"] = f"bytes={part.size}-"
    with http_stream_backoff(
        "GET",
        url,
        headers=headers,
        timeout=hub.timeout,
        max_retries=3,
        retry_on_exceptions=(),  # dropped connections are resumed by _fetch, from the new size
        retry_on_status_codes=_RETRY_STATUS,
    ) as response:
        if response.status_code == 416 or not _continues(response, part.size):
            part.restart()  # the partial data does not fit this file: start it over
            return
        hf_raise_for_status(response)
        with part.path.open("ab") as f:
            for block in response.iter_bytes():
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"Download cancelled; {human_size(part.size)} kept for later.")
                part.write(f, block)
                meter.update(part.size)


def _continues(response: httpx2.Response, offset: int) -> bool:
    """Whether the body starts at ``offset`` (a server may ignore Range and send all of it)."""
    if offset == 0 or response.status_code >= 300:
        return True
    if response.status_code != 206:
        return False
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return match is not None and int(match.group(1)) == offset


def _transfer_problem(exc: Exception, hub: _Hub) -> str:
    if isinstance(exc, httpx2.TimeoutException):
        return f"no data for {hub.timeout:g} s (set HF_HUB_DOWNLOAD_TIMEOUT to wait longer)"
    if isinstance(exc, httpx2.ConnectError):
        return f"cannot connect ({exc})"
    return f"the connection broke ({exc})"


def _pause(seconds: float, cancel: threading.Event | None) -> None:
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        raise Cancelled("Download cancelled; the data downloaded so far is kept for later.")


# --- verification and the final move ------------------------------------------------------------


def _finish(
    part: _Partial, target: Path, spec: DownloadSpec, sha256: str | None, total: int | None
) -> DownloadResult:
    actual = part.hasher.hexdigest()
    if (sha256 is not None and actual != sha256) or (total is not None and part.size != total):
        part.discard()
        raise DownloadError(
            f"The downloaded {spec.file_name} is damaged: sha256 {actual} ({part.size:,} bytes), "
            f"expected {sha256 or 'any'} ({total or 'any'} bytes). It was deleted; download it "
            "again. If this repeats, the file on the hub is not the expected one."
        )
    try:
        _move_without_replacing(part.path, target)
    except FileExistsError:  # another download finished first while this one ran
        result = _existing(target, actual)
        part.discard()
        return result
    return _result(target, actual)


def _move_without_replacing(src: Path, dst: Path) -> None:
    """Atomically give ``src`` the name ``dst``; ``FileExistsError`` if ``dst`` exists."""
    try:
        os.link(src, dst)  # unlike rename, refuses to replace an existing file
    except FileExistsError:
        raise
    except OSError:  # no hard links here (FAT, some network shares): check, then rename
        if dst.exists():
            raise FileExistsError(dst) from None
        os.replace(src, dst)
        return
    src.unlink()
