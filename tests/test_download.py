"""Tests of `mmkeras.data.download` against a real HTTP server on 127.0.0.1.

The server runs in a thread of the test process and serves archives that each test builds in `tmp_path`;
per path it plays a script of responses (the last one repeats) and records every request, so the tests can
count requests: a cache hit makes none, a 404 or a checksum mismatch exactly one, a 500 one per attempt. It
also counts the body bytes it sent, so a test can show that a client stopped reading early.

The hostile archives include the two of review 05 (S7), built here: a hard link through a chain of symbolic
links that are each "." on paper, on a Python with and without `tarfile.data_filter`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import importlib.util
import io
import os
import socket
import stat
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mmkeras.data import download as download_module
from mmkeras.data import extract as extract_module
from mmkeras.data.download import (
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    download,
    extract_archive,
    file_sha256,
    resolve_data_dir,
    resolve_url,
)
from mmkeras.data.leftovers import STALE_AFTER_SECONDS, owner_token
from mmkeras.data.registry import REGISTRY, DatasetSpec, get_spec

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seed():
    """Replaces conftest's `_seed` for this module: downloads use no Keras, so there is nothing to seed and no
    session to clear (that import and clearing cost 0.2 to 0.6 s per test)."""
    yield

# --- a scripted HTTP server --------------------------------------------------------------------------------


@dataclasses.dataclass
class Response:
    """What the server sends for one request."""

    status: int = 200
    body: bytes = b""
    declared_length: int | None = None  # Content-Length to announce; defaults to the body's length
    send_length: bool = True  # False: no Content-Length, the body ends when the connection closes
    repeat: int = 1  # send `body` this many times (a long body that is never built in memory)
    drip: float = 0.0  # send the body one byte at a time, waiting this many seconds after each
    stall_before: float = 0.0  # seconds to wait before the status line
    stall_after: int | None = None  # send this many body bytes, then wait `stall_seconds`
    stall_seconds: float = 0.0


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _ScriptedServer

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        response = self.server.next_response(self.path)
        try:
            self._send(response)
        except OSError:  # the client gave up (timeout, or it stopped reading): nothing to do
            pass
        finally:
            self.server.busy.release()

    def _write(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()
        self.server.count_sent(len(data))

    def _send(self, response: Response) -> None:
        release = self.server.release
        if response.stall_before:
            release.wait(response.stall_before)
        self.send_response(response.status)
        length = len(response.body) * response.repeat
        if response.send_length:
            self.send_header("Content-Length", str(length if response.declared_length is None
                                                   else response.declared_length))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if response.stall_after is not None:
            self._write(response.body[: response.stall_after])
            release.wait(response.stall_seconds)
            return
        if response.drip:
            for index in range(len(response.body)):
                self._write(response.body[index : index + 1])
                if release.wait(response.drip):
                    return
            return
        for _ in range(response.repeat):
            self._write(response.body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server API)
        pass


class _ScriptedServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.scripts: dict[str, list[Response]] = {}
        self.requests: list[str] = []
        self.sent = 0  # body bytes handed to the socket, all requests together
        self.busy = threading.Semaphore(0)  # released once per finished request
        self.release = threading.Event()  # set at teardown to end stalled handlers at once
        self._lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, *responses: Response) -> None:
        self.scripts[path] = list(responses)

    def count_sent(self, size: int) -> None:
        with self._lock:
            self.sent += size

    def wait_finished(self, requests: int, timeout: float = 10) -> None:
        """Wait until `requests` requests have been answered completely (or abandoned by the client)."""
        for _ in range(requests):
            assert self.busy.acquire(timeout=timeout), "the server is still sending"

    def next_response(self, path: str) -> Response:
        with self._lock:
            self.requests.append(path)
            script = self.scripts.get(path)
            if not script:
                return Response(status=404, body=b"not found")
            return script.pop(0) if len(script) > 1 else script[0]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that time out on purpose are not errors here


@pytest.fixture
def server() -> Iterator[_ScriptedServer]:
    httpd = _ScriptedServer()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# --- archives the tests build ------------------------------------------------------------------------------


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


def make_tar(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tar_link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_spec(
    url: str, payload: bytes | None, archive_format: str | None = "zip", **changes: object
) -> DatasetSpec:
    fields = dict(
        name="toy",
        url=url,
        sha256=sha256(payload) if payload is not None else None,
        size_bytes=len(payload) if payload is not None else None,
        license="CC0-1.0",
        citation="mmkeras tests",
        archive_format=archive_format,
        description="An archive built by the test.",
    )
    fields.update(changes)
    return DatasetSpec(**fields)


def leftovers(data_dir: Path) -> list[str]:
    """Temporary files or folders (`.toy.*.part`, `.toy.*.extracting`, ...) left in the data directory."""
    return sorted(p.name for p in data_dir.iterdir() if p.name.startswith(".")) if data_dir.exists() else []


ZIP_MEMBERS = {"toy/readme.txt": b"hello zip", "toy/audio/0_a_0.wav": b"RIFF....WAVE"}
FAST = dict(progress=False, backoff=0.0, timeout=5)


# --- success and cache -------------------------------------------------------------------------------------


def test_zip_is_downloaded_verified_extracted_and_cached(server, tmp_path):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/files/toy.zip", Response(body=payload))
    spec = make_spec(server.url("/files/toy.zip"), payload)
    data_dir = tmp_path / "data"

    path = download(spec, data_dir=data_dir, **FAST)

    assert path == data_dir / "toy"
    assert (path / "toy" / "readme.txt").read_bytes() == b"hello zip"
    assert (path / "toy" / "audio" / "0_a_0.wav").read_bytes() == b"RIFF....WAVE"
    assert file_sha256(data_dir / "toy.zip") == spec.sha256
    assert server.requests == ["/files/toy.zip"]
    assert leftovers(data_dir) == []

    again = download(spec, data_dir=data_dir, **FAST)
    assert again == path
    assert server.requests == ["/files/toy.zip"], "a verified cached file must not be downloaded again"


def test_tar_gz_with_progress_bar(server, tmp_path, capsys):
    payload = make_tar([("fsdd/recordings/3_x_1.wav", b"three"), tar_link("fsdd/latest", "recordings")])
    server.serve("/v1.tar.gz", Response(body=payload))
    spec = make_spec(server.url("/v1.tar.gz"), payload, archive_format="tar.gz")

    path = download(spec, data_dir=tmp_path, progress=True, backoff=0.0)

    assert (path / "fsdd" / "recordings" / "3_x_1.wav").read_bytes() == b"three"
    assert (path / "fsdd" / "latest" / "3_x_1.wav").read_bytes() == b"three", "inner symlinks are kept"
    assert "toy" in capsys.readouterr().err, "tqdm labels the bar with the dataset name"


def test_plain_file_is_not_extracted(server, tmp_path):
    payload = b"\x93NUMPY fake npz bytes"
    server.serve("/mnist.npz", Response(body=payload))
    spec = make_spec(server.url("/mnist.npz"), payload, archive_format=None)

    path = download(spec, data_dir=tmp_path, **FAST)

    assert path == tmp_path / "toy.npz", "a plain file keeps the suffix of its URL"
    assert path.read_bytes() == payload
    assert download(spec, data_dir=tmp_path, **FAST) == path
    assert len(server.requests) == 1


def test_extract_false_returns_the_archive(server, tmp_path):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/toy.zip", Response(body=payload))
    path = download(make_spec(server.url("/toy.zip"), payload), data_dir=tmp_path, extract=False, **FAST)
    assert path == tmp_path / "toy.zip"
    assert not (tmp_path / "toy").exists()


def test_cached_file_with_wrong_hash_is_downloaded_again(server, tmp_path):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/toy.zip", Response(body=payload))
    spec = make_spec(server.url("/toy.zip"), payload)
    (tmp_path / "toy.zip").write_bytes(b"a corrupted cached copy")

    with pytest.warns(UserWarning, match=r"cached file .*toy\.zip.* has sha256=.*downloading again"):
        path = download(spec, data_dir=tmp_path, **FAST)

    assert file_sha256(tmp_path / "toy.zip") == spec.sha256
    assert (path / "toy" / "readme.txt").exists()
    assert server.requests == ["/toy.zip"]


def test_partial_extraction_without_marker_is_replaced(server, tmp_path):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/toy.zip", Response(body=payload))
    spec = make_spec(server.url("/toy.zip"), payload)
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "half-written.tmp").write_bytes(b"junk")

    path = download(spec, data_dir=tmp_path, **FAST)

    assert not (path / "half-written.tmp").exists()
    assert (path / "toy" / "readme.txt").exists()
    assert leftovers(tmp_path) == []


def test_deleted_archive_keeps_verified_extraction(server, tmp_path):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/toy.zip", Response(body=payload))
    spec = make_spec(server.url("/toy.zip"), payload)
    download(spec, data_dir=tmp_path, **FAST)
    (tmp_path / "toy.zip").unlink()  # a user saving disk space

    assert download(spec, data_dir=tmp_path, **FAST) == tmp_path / "toy"
    assert len(server.requests) == 1


# --- corrupted, truncated, wrong checksum ------------------------------------------------------------------


def assert_nothing_left(data_dir: Path) -> None:
    assert not (data_dir / "toy.zip").exists(), "an unverified file must never take the final name"
    assert not (data_dir / "toy").exists()
    assert leftovers(data_dir) == []


def test_corrupted_body_raises_checksum_error_without_retry(server, tmp_path):
    payload = make_zip(ZIP_MEMBERS)
    corrupted = payload[:-10] + b"X" * 10
    server.serve("/toy.zip", Response(body=corrupted))
    spec = make_spec(server.url("/toy.zip"), payload)

    expected = (
        rf"checksum mismatch for toy: expected sha256={spec.sha256}, received sha256={sha256(corrupted)}"
    )
    with pytest.raises(ChecksumError, match=expected):
        download(spec, data_dir=tmp_path, retries=3, **FAST)

    assert server.requests == ["/toy.zip"], "a checksum mismatch is not retried"
    assert_nothing_left(tmp_path)


def test_wrong_checksum_in_spec(server, tmp_path):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/toy.zip", Response(body=payload))
    spec = make_spec(server.url("/toy.zip"), payload, sha256="0" * 64)

    expected = rf"expected sha256={'0' * 64}, received sha256={sha256(payload)}"
    with pytest.raises(ChecksumError, match=expected):
        download(spec, data_dir=tmp_path, **FAST)
    assert_nothing_left(tmp_path)


def test_truncated_body_is_retried_then_fails_cleanly(server, tmp_path):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/toy.zip", Response(body=payload[:50], declared_length=len(payload)))
    spec = make_spec(server.url("/toy.zip"), payload)

    expected = r"after 2 attempt.*truncated body from URL .*: received 50 of \d+ bytes"
    with pytest.raises(DownloadError, match=expected) as info:
        download(spec, data_dir=tmp_path, retries=1, **FAST)

    assert not isinstance(info.value, ChecksumError)
    assert server.requests == ["/toy.zip"] * 2
    assert_nothing_left(tmp_path)


def test_truncated_then_complete_succeeds(server, tmp_path):
    payload = make_zip(ZIP_MEMBERS)
    truncated = Response(body=payload[:50], declared_length=len(payload))
    server.serve("/toy.zip", truncated, Response(body=payload))
    path = download(make_spec(server.url("/toy.zip"), payload), data_dir=tmp_path, **FAST)
    assert (path / "toy" / "readme.txt").exists()
    assert len(server.requests) == 2


# --- HTTP errors, retries, timeouts ------------------------------------------------------------------------


def test_404_is_a_clear_error_and_not_retried(server, tmp_path):
    spec = make_spec(server.url("/missing.zip"), b"whatever")

    with pytest.raises(DownloadError, match=r"HTTP 404 \(Not Found\) for URL http://127\.0\.0\.1:\d+/missing\.zip"):
        download(spec, data_dir=tmp_path, retries=3, **FAST)

    assert server.requests == ["/missing.zip"]
    assert leftovers(tmp_path) == []


def test_500_then_success_is_retried_with_exponential_backoff(server, tmp_path, monkeypatch):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/toy.zip", Response(status=500), Response(status=503), Response(body=payload))
    waits: list[float] = []
    real_sleep = time.sleep
    def recording_sleep(seconds: float) -> None:
        waits.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(download_module.time, "sleep", recording_sleep)

    path = download(make_spec(server.url("/toy.zip"), payload), data_dir=tmp_path, retries=3, backoff=0.01,
                    progress=False, timeout=5)

    assert (path / "toy" / "readme.txt").exists()
    assert server.requests == ["/toy.zip"] * 3
    assert waits == [0.01, 0.02]


def test_persistent_500_gives_up_after_the_retries(server, tmp_path):
    server.serve("/toy.zip", Response(status=500))
    spec = make_spec(server.url("/toy.zip"), b"whatever")

    with pytest.raises(DownloadError, match=r"could not download 'toy' after 3 attempt\(s\): HTTP 500"):
        download(spec, data_dir=tmp_path, retries=2, **FAST)
    assert len(server.requests) == 3
    assert leftovers(tmp_path) == []


def test_connection_refused_is_retried_and_reported(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = make_spec(f"http://127.0.0.1:{port}/toy.zip", b"whatever")

    with pytest.raises(DownloadError, match=r"after 2 attempt\(s\): cannot reach URL http://127\.0\.0\.1"):
        download(spec, data_dir=tmp_path, retries=1, **FAST)


def test_server_stalled_before_answering_times_out(server, tmp_path):
    server.serve("/toy.zip", Response(body=b"late", stall_before=30))
    spec = make_spec(server.url("/toy.zip"), b"late")

    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"after 2 attempt\(s\).*timed out"):
        download(spec, data_dir=tmp_path, timeout=0.5, retries=1, progress=False, backoff=0.0)
    elapsed = time.monotonic() - start

    assert elapsed < 4, f"two attempts with timeout=0.5 s took {elapsed:.1f} s"
    assert len(server.requests) == 2
    assert leftovers(tmp_path) == []


def test_server_stalled_mid_body_times_out(server, tmp_path):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/toy.zip", Response(body=payload, stall_after=20, stall_seconds=30))
    spec = make_spec(server.url("/toy.zip"), payload)

    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"interrupted after 20 bytes.*timed out"):
        download(spec, data_dir=tmp_path, timeout=0.5, retries=0, progress=False)
    assert time.monotonic() - start < 3
    assert_nothing_left(tmp_path)


# --- size limit, overall deadline, leftovers of killed runs (review 05, S12) --------------------------------


ZEROS = bytes(1 << 16)
ENDLESS = 1024  # repeats of ZEROS: a 64 MiB body, far beyond any limit below


def spy_on_part_writes(monkeypatch) -> list[int]:
    """Record the size of every write into a `.part` file."""
    sizes: list[int] = []
    real = download_module._copy_hashing

    class CountingSink:
        def __init__(self, sink):
            self.sink = sink

        def write(self, data: bytes) -> int:
            sizes.append(len(data))
            return self.sink.write(data)

    monkeypatch.setattr(download_module, "_copy_hashing",
                        lambda source, sink, *args, **kwargs: real(source, CountingSink(sink), *args, **kwargs))
    return sizes


@pytest.mark.parametrize("send_length", [False, True], ids=["no-content-length", "content-length"])
def test_oversized_body_stops_at_the_expected_size(server, tmp_path, monkeypatch, send_length):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/toy.zip", Response(body=ZEROS, repeat=ENDLESS, send_length=send_length))
    spec = make_spec(server.url("/toy.zip"), payload)  # size_bytes=len(payload)
    limit = download_module.size_limit(len(payload))
    writes = spy_on_part_writes(monkeypatch)

    verb = r"announced \(Content-Length\)" if send_length else "arrived"
    expected = (rf"download of 'toy' from URL .* stopped: (\d+) bytes {verb}, more than the {len(payload)} bytes "
                rf"expected \(size_bytes in the registry\) plus a margin \(at most {limit} bytes are accepted\)")
    with pytest.raises(DownloadError, match=expected) as info:
        download(spec, data_dir=tmp_path, retries=2, **FAST)

    assert not isinstance(info.value, ChecksumError)
    assert sum(writes) <= limit, "the .part file never holds more than the limit"
    if send_length:
        assert writes == [], "an announced size over the limit is refused before reading the body"
    server.wait_finished(1)
    assert server.sent < len(ZEROS) * ENDLESS // 2, f"the server could send {server.sent} bytes"
    assert server.requests == ["/toy.zip"], "a body of the wrong size is not retried"
    assert_nothing_left(tmp_path)


def test_body_without_content_length_is_read_to_the_end(server, tmp_path):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/toy.zip", Response(body=payload, send_length=False))
    path = download(make_spec(server.url("/toy.zip"), payload), data_dir=tmp_path, **FAST)
    assert (path / "toy" / "readme.txt").read_bytes() == b"hello zip"


def test_default_deadline_and_size_limit_follow_the_size():
    assert download_module.default_deadline(get_spec("mnist")) == 900
    assert download_module.default_deadline(make_spec("https://example.invalid/big.zip", None,
                                                       size_bytes=2**30)) == 2**30 / (32 * 1024)
    assert download_module.default_deadline(get_spec("esc50")) == 6 * 3600, "size unknown: a fixed generous time"
    assert download_module.size_limit(1000) == 1000 + 2**20
    assert download_module.size_limit(10**9) == 10**9 + 10**7


SLOW = {
    "drip": (Response(body=make_zip(ZIP_MEMBERS), drip=0.1), r"received \d+ of \d+ bytes"),
    "stall-mid-body": (Response(body=make_zip(ZIP_MEMBERS), stall_after=20, stall_seconds=30),
                       r"received 20 of \d+ bytes"),
    "stall-before-headers": (Response(body=make_zip(ZIP_MEMBERS), stall_before=30), r"no answer: timed out"),
}


@pytest.mark.parametrize("case", sorted(SLOW))
def test_overall_deadline_ends_a_slow_download(server, tmp_path, case):
    """A server that drips a byte now and then never trips the 30 s read timeout; the deadline ends it."""
    response, what = SLOW[case]
    server.serve("/toy.zip", response)
    spec = make_spec(server.url("/toy.zip"), response.body)

    start = time.monotonic()
    expected = rf"download of 'toy' from URL .* did not finish within its deadline of 1 s \({what}\)"
    with pytest.raises(DownloadError, match=expected):
        download(spec, data_dir=tmp_path, timeout=30, retries=3, deadline=1.0, progress=False, backoff=0.0)
    elapsed = time.monotonic() - start

    assert 0.9 < elapsed < 3, f"a 1 s deadline ended the download after {elapsed:.1f} s"
    assert server.requests == ["/toy.zip"], "no retry once the deadline has passed"
    assert_nothing_left(tmp_path)


def test_deadline_also_bounds_the_retries(server, tmp_path):
    server.serve("/toy.zip", Response(status=503))
    spec = make_spec(server.url("/toy.zip"), b"whatever")
    with pytest.raises(DownloadError, match=r"deadline of 0\.5 s \(1 attempt\(s\), the last one: HTTP 503"):
        download(spec, data_dir=tmp_path, retries=5, backoff=10.0, deadline=0.5, progress=False, timeout=5)
    assert len(server.requests) == 1, "a wait that would end after the deadline is not started"


_KILLED_CHILD = """
import sys
from mmkeras.data.download import download
from mmkeras.data.registry import DatasetSpec

url, sha256, size, data_dir = sys.argv[1:]
spec = DatasetSpec(name="toy", url=url, sha256=sha256, size_bytes=int(size), license="CC0-1.0", citation="-",
                   archive_format="zip", description="a download that will be killed")
download(spec, data_dir=data_dir, progress=False, timeout=60, retries=0)
"""


def _wait_for(condition: Callable[[], list[Path]], timeout: float) -> list[Path]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            found = condition()
        except OSError:  # a file vanished between listing and stat
            found = []
        if found:
            return found
        time.sleep(0.05)
    return []


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_leftovers_of_a_killed_download_are_swept(server, tmp_path):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/toy.zip", Response(body=payload, stall_after=20, stall_seconds=60), Response(body=payload))
    spec = make_spec(server.url("/toy.zip"), payload)
    child = subprocess.Popen([sys.executable, "-c", _KILLED_CHILD, spec.url, spec.sha256, str(len(payload)),
                              str(tmp_path)], cwd=REPO)
    try:
        parts = _wait_for(lambda: list(tmp_path.glob(".toy.*.part")) if server.sent >= 20 else [], 60)
    finally:
        child.kill()  # SIGKILL: no except or finally clause of the child runs
        child.wait()
    assert len(parts) == 1, "the child should have been killed while writing its .part file"
    # What else a crash leaves: an extraction killed half-way, by the same process ...
    staging = tmp_path / f".toy.{owner_token(child.pid)}.k1lled00.extracting"
    (staging / "toy").mkdir(parents=True)
    (staging / "toy" / "half.txt").write_bytes(b"half")
    # ... and files of an older mmkeras that did not record their owner: removed once old, kept while recent.
    old, recent, other = tmp_path / ".toy.fx2fycvf.part", tmp_path / ".toy.zmg3vpca.part", tmp_path / ".esc.fx2fy.part"
    for path in (old, recent, other):
        path.write_bytes(b"partial")
    _age(old, STALE_AFTER_SECONDS + 60)
    _age(other, STALE_AFTER_SECONDS + 60)  # another dataset's: not this download's business

    path = download(spec, data_dir=tmp_path, **FAST)

    assert (path / "toy" / "readme.txt").exists()
    assert leftovers(tmp_path) == sorted([other.name, recent.name])
    assert server.requests == ["/toy.zip"] * 2


# --- hostile archives --------------------------------------------------------------------------------------


def _absolute_member(tmp_path: Path) -> str:
    return str(tmp_path / "evil")


def _tar_with_device() -> bytes:
    info = tarfile.TarInfo("dev-null")
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return make_tar([info])


def _link_chain(victim: str, silent: bool = False) -> bytes:
    """Review 05, S7: `s -> .`, `t -> s/..`, `u -> t/..`, `v -> u/..` are each "." on paper, but on disk they
    climb from the staging folder to the data directory, its parent and its grandparent. The hard link
    `h -> v/<victim>` names a file up there, and the regular member `h` that follows is written through it.
    The silent variant then re-adds `t`, `u` and `v` as `-> .`, so the links left on disk look harmless."""
    members: list[tarfile.TarInfo | tuple[str, bytes]] = [
        tar_link("s", "."), tar_link("t", "s/.."), tar_link("u", "t/.."), tar_link("v", "u/.."),
        tar_link("h", f"v/{victim}", kind=tarfile.LNKTYPE), ("h", b"echo PWNED-by-mmkeras-archive\n"),
    ]
    if silent:
        members += [tar_link(name, ".") for name in ("t", "u", "v")]
    return make_tar(members)


def _zip_with_symlink(target: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("passwd")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, target)
    return buffer.getvalue()


HOSTILE: dict[str, tuple[str, Callable[[Path], bytes], str]] = {
    "tar-dotdot": (
        "tar.gz",
        lambda tmp: make_tar([("ok.txt", b"ok"), ("../evil", b"pwned")]),
        r"'\.\./evil' \('\.\.' component\)",
    ),
    "tar-absolute": ("tar.gz", lambda tmp: make_tar([(_absolute_member(tmp), b"pwned")]), "absolute path"),
    "tar-symlink-etc-passwd": (
        "tar.gz",
        lambda tmp: make_tar([tar_link("passwd", "/etc/passwd"), ("passwd", b"pwned")]),
        r"'passwd' \(link to absolute path '/etc/passwd'\)",
    ),
    "tar-symlink-relative-escape": (
        "tar",
        lambda tmp: make_tar([tar_link("data/up", "../../evil")], mode="w"),
        "leaves the target folder",
    ),
    "tar-write-through-symlink": (
        "tar",
        lambda tmp: make_tar(
            [tar_link("sub/a", ".."), tar_link("sub/a/b", ".."), ("sub/a/b/evil", b"pwned")], mode="w"
        ),
        r"'sub/a/b' \(written through the link 'sub/a'\)",
    ),
    "tar-hardlink-etc-passwd": (
        "tar.gz",
        lambda tmp: make_tar([tar_link("passwd", "/etc/passwd", kind=tarfile.LNKTYPE)]),
        "link to absolute path",
    ),
    "tar-device": (
        "tar.gz",
        lambda tmp: _tar_with_device(),
        "device or FIFO",
    ),
    "tar-duplicate-name": (
        "tar",
        lambda tmp: make_tar([("a.txt", b"ok"), ("a.txt", b"pwned")], mode="w"),
        r"'a\.txt' \(duplicate name: an earlier member has it\)",
    ),
    "tar-hardlink-to-no-earlier-file": (
        "tar",
        lambda tmp: make_tar([tar_link("h", "later", kind=tarfile.LNKTYPE), ("later", b"x")], mode="w"),
        r"'h' \(hard link to 'later', which is not a file stored earlier\)",
    ),
    "tar-hardlink-through-symlink": (
        "tar",
        lambda tmp: make_tar([("sub/f", b"x"), tar_link("s", "sub"), tar_link("h", "s/f", kind=tarfile.LNKTYPE)],
                             mode="w"),
        r"'h' \(link to 's/f' passes through the link 's'\)",
    ),
    "tar-link-chain": (
        "tar.gz",
        lambda tmp: _link_chain("evil"),
        r"'t' \(link to 's/\.\.' passes through the link 's'\)",
    ),
    "tar-link-chain-silent": (
        "tar.gz",
        lambda tmp: _link_chain("evil", silent=True),
        r"'t' \(link to 's/\.\.' passes through the link 's'\)",
    ),
    "zip-dotdot": ("zip", lambda tmp: make_zip({"ok.txt": b"ok", "../evil": b"pwned"}), r"'\.\./evil'"),
    "zip-absolute": ("zip", lambda tmp: make_zip({_absolute_member(tmp): b"pwned"}), "absolute path"),
    "zip-symlink-escape": ("zip", lambda tmp: _zip_with_symlink("/etc/passwd"), "link to absolute path"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_rejected_and_nothing_is_extracted(server, tmp_path, case):
    archive_format, build, reason = HOSTILE[case]
    payload = build(tmp_path)
    filename = "hostile.zip" if archive_format == "zip" else "hostile.tar.gz"
    server.serve(f"/{filename}", Response(body=payload))
    spec = make_spec(server.url(f"/{filename}"), payload, archive_format=archive_format)
    data_dir = tmp_path / "deep" / "data"

    with pytest.raises(UnsafeArchiveError, match=rf"unsafe path in archive .*{reason}"):
        download(spec, data_dir=data_dir, **FAST)

    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "deep" / "evil").exists()
    assert not (data_dir / "toy").exists()
    assert leftovers(data_dir) == []
    assert Path("/etc/passwd").read_bytes() != b"pwned"


TAR_CASES = sorted(case for case, (archive_format, _, _) in HOSTILE.items() if archive_format != "zip")
VICTIM = b"# the user's own shell start-up file\n"
LINK_CHAINS = {"hardlink-chain": False, "hardlink-chain-silent": True}


def _no_data_filter(monkeypatch) -> None:
    """Play a Python without extraction filters (such as Debian 12's python3 3.11.2)."""
    monkeypatch.delattr(tarfile, "data_filter", raising=False)


@pytest.mark.parametrize("data_filter", [True, False], ids=["with-data-filter", "without-data-filter"])
@pytest.mark.parametrize("case", sorted(LINK_CHAINS))
def test_hard_link_through_a_symlink_chain_cannot_write_outside(server, tmp_path, monkeypatch, case, data_filter):
    """Review 05, S7, in a home folder of its own: the data directory is `home/.mmkeras/datasets`, and the
    archive aims at `home/.bashrc`."""
    if not data_filter:
        _no_data_filter(monkeypatch)
    elif not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no tarfile.data_filter")
    home = tmp_path / "home"
    data_dir = home / ".mmkeras" / "datasets"
    data_dir.mkdir(parents=True)
    victim = home / ".bashrc"
    victim.write_bytes(VICTIM)
    payload = _link_chain(".bashrc", silent=LINK_CHAINS[case])
    server.serve("/mydata.tar.gz", Response(body=payload))
    spec = make_spec(server.url("/mydata.tar.gz"), payload, archive_format="tar.gz")

    with pytest.raises(UnsafeArchiveError) as info:
        download(spec, data_dir=data_dir, **FAST)

    assert victim.read_bytes() == VICTIM, "the file outside the data directory was overwritten"
    assert victim.stat().st_nlink == 1, "the victim must not be hard-linked into the dataset"
    assert "'t' (link to 's/..' passes through the link 's')" in str(info.value)
    assert not (data_dir / "toy").exists()
    assert leftovers(data_dir) == []


@pytest.mark.parametrize("case", TAR_CASES)
def test_hostile_tar_is_rejected_without_data_filter(tmp_path, monkeypatch, case):
    _no_data_filter(monkeypatch)
    archive_format, build, reason = HOSTILE[case]
    archive = tmp_path / "deep" / "data" / "hostile.tar"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(build(tmp_path))

    with pytest.raises(UnsafeArchiveError, match=rf"unsafe path in archive .*{reason}"):
        extract_archive(archive, archive.parent / "toy", archive_format)

    assert not (tmp_path / "evil").exists()
    assert not (archive.parent / "toy").exists()
    assert leftovers(archive.parent) == []


@pytest.mark.parametrize("case", [*TAR_CASES, "victim-chain", "victim-chain-silent"])
def test_tar_writer_alone_refuses_hostile_archives(tmp_path, monkeypatch, case):
    """Defence in depth: with no data filter and the member checks switched off, the members are written by
    `_write_tar_members` alone, which must still refuse each archive, from what it sees on the disk."""
    _no_data_filter(monkeypatch)
    monkeypatch.setattr(extract_module, "_check_tar_members", lambda archive, members: None)
    data_dir = tmp_path / "deep" / "data"
    data_dir.mkdir(parents=True)
    victim = tmp_path / "evil"  # where the chain climbs: staging -> data -> deep -> tmp_path
    if case.startswith("victim-chain"):
        victim.write_bytes(VICTIM)
        payload, archive_format = _link_chain("evil", silent=case.endswith("silent")), "tar.gz"
    else:
        archive_format, build, _ = HOSTILE[case]
        payload = build(tmp_path)
    (tmp_path / "hostile.tar").write_bytes(payload)

    with pytest.raises(UnsafeArchiveError, match=r"unsafe path in archive 'hostile\.tar'"):
        extract_archive(tmp_path / "hostile.tar", data_dir / "toy", archive_format)

    if case.startswith("victim-chain"):
        assert victim.read_bytes() == VICTIM and victim.stat().st_nlink == 1
    else:
        assert not victim.exists()
    assert not (data_dir / "toy").exists()
    assert leftovers(data_dir) == []


def _tree(root: Path) -> dict[str, tuple]:
    """What a folder holds: type, bytes, mode and time of files, targets of links (links are not followed)."""
    tree = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            info = path.lstat()
            relative = path.relative_to(root).as_posix()
            if stat.S_ISLNK(info.st_mode):
                tree[relative] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                tree[relative] = ("dir",)
            else:
                tree[relative] = ("file", path.read_bytes(), oct(stat.S_IMODE(info.st_mode)), int(info.st_mtime))
    return tree


def test_tar_without_data_filter_extracts_like_the_data_filter(tmp_path, monkeypatch):
    if not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no tarfile.data_filter to compare with")

    def member(name: str, data: bytes, mode: int) -> tuple[tarfile.TarInfo, bytes]:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), mode, 1_600_000_000
        return info, data

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in ("./", "./pkg/"):
            folder = tarfile.TarInfo(name)
            folder.type = tarfile.DIRTYPE
            archive.addfile(folder)
        for name, data, mode in [("./pkg/run.sh", b"#!/bin/sh\n", 0o4777), ("./pkg/data.txt", b"data", 0o444),
                                 ("pkg/sub/deep.txt", b"deep", 0o640)]:
            info, data = member(name, data, mode)
            archive.addfile(info, io.BytesIO(data))
        archive.addfile(tar_link("pkg/latest", "data.txt"))
        archive.addfile(tar_link("pkg/up", "../pkg/sub"))
        archive.addfile(tar_link("pkg/copy.txt", "pkg/data.txt", kind=tarfile.LNKTYPE))
    (tmp_path / "fine.tar.gz").write_bytes(buffer.getvalue())

    with_filter = _tree(extract_archive(tmp_path / "fine.tar.gz", tmp_path / "with"))
    _no_data_filter(monkeypatch)
    without_filter = _tree(extract_archive(tmp_path / "fine.tar.gz", tmp_path / "without"))

    assert without_filter == with_filter
    assert with_filter["pkg/run.sh"][2] == "0o755", "no set-uid bit, no group or other write"
    assert with_filter["pkg/copy.txt"][1] == b"data" and with_filter["pkg/up"] == ("link", "../pkg/sub")
    assert (tmp_path / "without" / "pkg" / "copy.txt").stat().st_nlink == 2, "a hard link, not a copy"


def test_extract_archive_refuses_unknown_format(tmp_path):
    (tmp_path / "data.rar").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"Received: 'data\.rar'"):
        extract_archive(tmp_path / "data.rar", tmp_path / "out")


def test_not_an_archive_is_a_clear_error(server, tmp_path):
    payload = b"this is not a zip file"
    server.serve("/toy.zip", Response(body=payload))
    with pytest.raises(DownloadError, match=r"cannot read zip archive .*toy\.zip"):
        download(make_spec(server.url("/toy.zip"), payload), data_dir=tmp_path, **FAST)
    assert not (tmp_path / "toy").exists()
    assert leftovers(tmp_path) == []


# --- data directory and mirror overrides -------------------------------------------------------------------


def test_data_dir_env_var_is_honoured(server, tmp_path, monkeypatch):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/toy.zip", Response(body=payload))
    monkeypatch.setenv("MMKERAS_DATA_DIR", str(tmp_path / "from-env"))

    path = download(make_spec(server.url("/toy.zip"), payload), **FAST)

    assert path == tmp_path / "from-env" / "toy"
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit", "the argument wins over the env"


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("MMKERAS_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_data_dir() == tmp_path / ".mmkeras" / "datasets"


def test_mirror_argument_replaces_the_url_base(server, tmp_path, monkeypatch):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/mirror/sub/toy.zip", Response(body=payload))
    spec = make_spec(server.url("/origin/toy.zip"), payload)  # the origin would answer 404
    monkeypatch.setenv("MMKERAS_MIRROR", server.url("/ignored"))

    path = download(spec, data_dir=tmp_path, base_url=server.url("/mirror/sub/"), **FAST)

    assert (path / "toy" / "readme.txt").exists()
    assert server.requests == ["/mirror/sub/toy.zip"]


def test_mirror_env_var_is_honoured(server, tmp_path, monkeypatch):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/mirror/toy.zip", Response(body=payload))
    monkeypatch.setenv("MMKERAS_MIRROR", server.url("/mirror"))

    download(make_spec(server.url("/origin/toy.zip"), payload), data_dir=tmp_path, **FAST)

    assert server.requests == ["/mirror/toy.zip"]


def test_file_mirror_folder(tmp_path):
    payload = make_zip(ZIP_MEMBERS)
    (tmp_path / "share").mkdir()
    (tmp_path / "share" / "toy.zip").write_bytes(payload)
    spec = make_spec("https://example.invalid/files/toy.zip", payload)

    path = download(spec, data_dir=tmp_path / "data", base_url=(tmp_path / "share").as_uri(), **FAST)
    assert (path / "toy" / "readme.txt").read_bytes() == b"hello zip"


def test_resolve_url_keeps_the_file_name():
    assert resolve_url(get_spec("fsdd"), "https://mirror.example.org/data") == (
        "https://mirror.example.org/data/v1.0.9.tar.gz"
    )


# --- registry, unverified specs, arguments -----------------------------------------------------------------


def test_get_spec_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match=r"Received: name='imagenet-42'") as info:
        get_spec("imagenet-42")
    for name in REGISTRY:
        assert name in str(info.value)


def test_registry_entries_are_well_formed():
    assert len(REGISTRY) >= 2
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.url.startswith("https://")
        assert spec.sha256 is None or len(spec.sha256) == 64
        assert spec.license and spec.citation and spec.description
    assert sum(spec.sha256 is not None for spec in REGISTRY.values()) >= 2


def test_spec_rejects_a_malformed_checksum():
    with pytest.raises(ValueError, match=r"Received: sha256='abc'"):
        make_spec("https://example.invalid/toy.zip", None, sha256="abc")


def test_spec_without_checksum_is_refused_before_any_request(server, tmp_path):
    spec = make_spec(server.url("/toy.zip"), None)
    expected = r"no sha256 is recorded for dataset 'toy'.*allow_unverified=True"
    with pytest.raises(ChecksumError, match=expected):
        download(spec, data_dir=tmp_path, **FAST)
    assert server.requests == []


def test_spec_without_checksum_with_explicit_opt_in(server, tmp_path):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/toy.zip", Response(body=payload))
    spec = make_spec(server.url("/toy.zip"), None)

    with pytest.warns(UserWarning, match=rf"without verification .*sha256={sha256(payload)}"):
        path = download(spec, data_dir=tmp_path, allow_unverified=True, **FAST)
    assert (path / "toy" / "readme.txt").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": 0}, r"Received: timeout=0"),
        ({"retries": -1}, r"Received: retries=-1"),
        ({"backoff": -1.0}, r"Received: backoff=-1\.0"),
        ({"deadline": 0}, r"Received: deadline=0"),
        ({"deadline": float("inf")}, r"Received: deadline=inf"),
    ],
)
def test_bad_arguments(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        download(make_spec("https://example.invalid/toy.zip", b"x"), data_dir=tmp_path, **kwargs)


def test_unknown_name_in_download():
    with pytest.raises(ValueError, match=r"Received: name='nope'"):
        download("nope")


# --- the command line: data_scripts/download.py and `mmkeras download` are one command ---------------------


def _data_script():
    path = Path(__file__).resolve().parents[1] / "data_scripts" / "download.py"
    spec = importlib.util.spec_from_file_location("mmkeras_download_cli", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _mmkeras_download(argv):
    from mmkeras.apps.cli import main

    return main(["download", *argv])


@pytest.fixture(scope="module", params=["data_scripts/download.py", "mmkeras download"])
def cli(request):
    """Both command lines, so that every test below shows they take the same flags and give the same codes."""
    return _data_script() if request.param.startswith("data_scripts") else _mmkeras_download


def test_cli_lists_datasets(cli, capsys):
    assert cli(["--list"]) == 0
    out = capsys.readouterr().out
    for name in REGISTRY:
        assert name in out


def test_cli_prints_hash(cli, tmp_path, capsys):
    (tmp_path / "f.bin").write_bytes(b"abc")
    assert cli(["--print-hash", str(tmp_path / "f.bin")]) == 0
    assert capsys.readouterr().out.startswith(f"{sha256(b'abc')}  3  ")


def test_cli_downloads_through_a_mirror(cli, server, tmp_path, capsys, monkeypatch):
    payload = make_zip(ZIP_MEMBERS)
    server.serve("/mirror/toy.zip", Response(body=payload))
    monkeypatch.setitem(REGISTRY, "toy", make_spec("https://example.invalid/files/toy.zip", payload))

    code = cli(["toy", "--data-dir", str(tmp_path), "--mirror", server.url("/mirror"), "--quiet"])

    assert code == 0
    assert f"ready at {tmp_path / 'toy'}" in capsys.readouterr().out
    assert server.requests[-1] == "/mirror/toy.zip"


def test_cli_reports_a_failed_download_with_code_1(cli, tmp_path, capsys):
    assert cli(["esc50", "--data-dir", str(tmp_path)]) == 1
    assert "no sha256 is recorded for dataset 'esc50'" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [(["nope"], "Received: 'nope'"), ([], "give a dataset NAME"),
                                          (["--print-hash", "/no/such/file"], "/no/such/file")])
def test_cli_reports_bad_usage_with_code_2(cli, argv, message, capsys):
    assert cli(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_rejects_bad_flag_values(cli, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli(["fsdd", "--timeout", "-3"])
    assert exit_info.value.code == 2 and "expected a positive number, received '-3'" in capsys.readouterr().err


def test_cli_passes_the_deadline_on(cli, tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(download_module, "download", lambda spec, **kwargs: calls.append(kwargs) or tmp_path)
    assert cli(["fsdd", "--data-dir", str(tmp_path), "--deadline", "7.5", "--quiet"]) == 0
    assert calls[-1]["deadline"] == 7.5
    assert cli(["fsdd", "--data-dir", str(tmp_path), "--quiet"]) == 0
    assert calls[-1]["deadline"] is None, "no flag: the automatic deadline"
    with pytest.raises(SystemExit) as exit_info:
        cli(["fsdd", "--deadline", "0"])
    assert exit_info.value.code == 2 and "expected a positive number, received '0'" in capsys.readouterr().err
