"""A Hugging Face Hub on 127.0.0.1 that speaks the download protocol ``huggingface_hub`` uses.

As the real hub does for LFS files: ``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}``
answers ``302`` to a CDN address (a second server, so another origin) and carries the file's
metadata in ``X-Repo-Commit``, ``X-Linked-Etag`` (the sha256), ``X-Linked-Size`` and ``ETag``; the
CDN serves the bytes with ``Range`` support (``206`` and ``Content-Range``). Failures carry the
``X-Error-Code`` headers ``huggingface_hub.utils.hf_raise_for_status`` maps to its errors
(``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``, ``GatedRepo``).

Knobs a test sets on a running server: ``cut_at`` (drop the connection once when a body reaches
that file offset), ``stall_at``/``stall_seconds`` (stop sending there, every time),
``stall_head_seconds``, ``corrupt`` (wrong bytes behind the right headers),
``bytes_per_second`` and ``cdn_status``. It records every request and counts the body bytes it sent.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

BLOCK = 64 * 1024  # bytes written per socket write
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass(frozen=True)
class HostedFile:
    repo_id: str
    filename: str
    data: bytes
    revision: str = "main"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Request:
    server: str  # "hub" or "cdn"
    method: str
    path: str
    headers: dict[str, str]  # names in lower case


@dataclass
class FakeHub:
    files: list[HostedFile]
    token: str | None = None  # when set, the repositories are gated behind this token
    # Knobs, read while requests are served.
    cut_at: int | None = None
    stall_at: int | None = None
    stall_seconds: float = 30.0
    stall_head_seconds: float = 0.0
    corrupt: bool = False
    bytes_per_second: float | None = None
    cdn_status: int | None = None  # the CDN refuses with this status (an expired address)
    # What happened.
    requests: list[Request] = field(default_factory=list)
    bytes_served: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.closing = threading.Event()  # ends stalls when the server stops
        self.hub = _server(self, "hub")
        self.cdn = _server(self, "cdn")

    @property
    def url(self) -> str:
        """The endpoint: what ``HF_ENDPOINT`` or ``endpoint=`` is set to."""
        return _url(self.hub)

    def gets(self, server: str = "cdn") -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and r.server == server]

    def __enter__(self) -> FakeHub:
        for server in (self.hub, self.cdn):
            # A short poll interval: stopping waits for the loop's next turn.
            serve = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
            serve.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.closing.set()
        for server in (self.hub, self.cdn):
            server.shutdown()
            server.server_close()

    # --- used by the handler ---

    def record(self, request: Request) -> None:
        with self.lock:
            self.requests.append(request)

    def count(self, n: int) -> None:
        with self.lock:
            self.bytes_served += n

    def take_cut(self, offset: int) -> bool:
        """True once, when a body has reached ``cut_at``."""
        with self.lock:
            if self.cut_at is not None and offset >= self.cut_at:
                self.cut_at = None
                return True
            return False

    def blob(self, sha256: str) -> HostedFile | None:
        return next((f for f in self.files if f.sha256 == sha256), None)


def _server(hub: FakeHub, role: str) -> ThreadingHTTPServer:
    handler = type(f"{role}Handler", (_Handler,), {"hub": hub, "role": role})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    return server


def _url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    role: str

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean

    def _answer(self, head: bool) -> None:
        path = urlsplit(self.path).path
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.hub.record(Request(self.role, self.command, path, headers))
        try:
            if self.role == "hub":
                self._resolve(path, head)
            else:
                self._blob(path, head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout, a cancel): nothing to answer

    # --- the hub: /{repo_id}/resolve/{revision}/{filename} ---

    def _resolve(self, path: str, head: bool) -> None:
        if head and self.hub.stall_head_seconds:
            self.hub.closing.wait(self.hub.stall_head_seconds)
        repo_part, sep, rest = path.partition("/resolve/")
        if not sep:
            return self._error(404, None, "Not found", head)
        repo_id = unquote(repo_part.strip("/"))
        revision, _, filename = (unquote(p) for p in rest.partition("/"))
        if refused := self._auth_refusal(repo_id):
            return self._error(*refused, head)
        in_repo = [f for f in self.hub.files if f.repo_id == repo_id]
        if not in_repo:
            return self._error(404, "RepoNotFound", "Repository not found", head)
        if revision not in {f.revision for f in in_repo} | {COMMIT}:
            return self._error(404, "RevisionNotFound", "Invalid rev id: " + revision, head)
        found = next((f for f in in_repo if f.filename == filename), None)
        if found is None:
            return self._error(404, "EntryNotFound", "Entry not found", head)
        self.send_response(302)
        self.send_header("Location", f"{_url(self.hub.cdn)}/blobs/{found.sha256}?signed=1")
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("X-Linked-Etag", f'"{found.sha256}"')
        self.send_header("X-Linked-Size", str(len(found.data)))
        self.send_header("ETag", '"0a1b2c3d"')  # the git blob of the LFS pointer
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _auth_refusal(self, repo_id: str) -> tuple[int, str, str] | None:
        if self.hub.token is None:
            return None
        given = self.headers.get("Authorization")
        if given is None:
            return 401, "GatedRepo", f"Access to model {repo_id} is restricted. Please log in."
        if given != f"Bearer {self.hub.token}":
            return 403, "GatedRepo", f"Access to model {repo_id} is restricted."
        return None

    def _error(self, status: int, code: str | None, message: str, head: bool) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        if code is not None:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    # --- the CDN: /blobs/{sha256} ---

    def _blob(self, path: str, head: bool) -> None:
        found = self.hub.blob(path.removeprefix("/blobs/"))
        if found is None:
            return self._error(404, None, "NoSuchKey", head)
        if self.hub.cdn_status is not None:
            return self._error(self.hub.cdn_status, None, "Request has expired", head)
        data = found.data
        if self.hub.corrupt:
            data = bytes(b ^ 0xFF for b in data[:16]) + data[16:]
        start, stop = self._range(len(data))
        if start >= len(data) and len(data) > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            return self.end_headers()
        ranged = "Range" in self.headers
        self.send_response(206 if ranged else 200)
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
        self.send_header("Content-Length", str(stop - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{found.sha256}"')
        self.end_headers()
        if not head:
            self._body(data, start, stop)

    def _range(self, size: int) -> tuple[int, int]:
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match is None:
            return 0, size
        last = int(match.group(2)) if match.group(2) else size - 1
        return int(match.group(1)), min(last + 1, size)

    def _body(self, data: bytes, start: int, stop: int) -> None:
        hub, pos, stalled = self.hub, start, False
        while pos < stop:
            if hub.take_cut(pos):
                self.close_connection = True
                return  # fewer bytes than Content-Length: the client sees a broken transfer
            if hub.stall_at is not None and pos >= hub.stall_at and not stalled:
                stalled = True
                hub.closing.wait(hub.stall_seconds)
            n = min(BLOCK, stop - pos, *_distances(pos, hub.cut_at, hub.stall_at))
            self.wfile.write(data[pos : pos + n])
            hub.count(n)
            pos += n
            if hub.bytes_per_second:
                time.sleep(n / hub.bytes_per_second)


def _distances(pos: int, *marks: int | None) -> list[int]:
    """How far ahead each knob's offset lies, so a block ends exactly there."""
    return [m - pos for m in marks if m is not None and m > pos]
