"""Tests of `mmkeras.data.download` against a real HTTP server on 127.0.0.1.

The server runs in a thread of the test process and serves archives that each test builds in `tmp_path`;
per path it plays a script of responses (the last one repeats) and records every request, so the tests can
count requests: a cache hit makes none, a 404 or a checksum mismatch exactly one, a 500 one per attempt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import importlib.util
import io
import socket
import stat
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mmkeras.data import download as download_module
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
from mmkeras.data.registry import REGISTRY, DatasetSpec, get_spec

# --- a scripted HTTP server --------------------------------------------------------------------------------


@dataclasses.dataclass
class Response:
    """What the server sends for one request."""

    status: int = 200
    body: bytes = b""
    declared_length: int | None = None  # Content-Length to announce; defaults to len(body)
    stall_before: float = 0.0  # seconds to wait before the status line
    stall_after: int | None = None  # send this many body bytes, then wait `stall_seconds`
    stall_seconds: float = 0.0


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _ScriptedServer

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        response = self.server.next_response(self.path)
        try:
            self._send(response)
        except OSError:  # the client gave up (timeout): nothing to do
            pass

    def _send(self, response: Response) -> None:
        release = self.server.release
        if response.stall_before:
            release.wait(response.stall_before)
        self.send_response(response.status)
        length = len(response.body) if response.declared_length is None else response.declared_length
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if response.stall_after is not None:
            self.wfile.write(response.body[: response.stall_after])
            self.wfile.flush()
            release.wait(response.stall_seconds)
            return
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server API)
        pass


class _ScriptedServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.scripts: dict[str, list[Response]] = {}
        self.requests: list[str] = []
        self.release = threading.Event()  # set at teardown to end stalled handlers at once
        self._lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, *responses: Response) -> None:
        self.scripts[path] = list(responses)

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


# --- hostile archives --------------------------------------------------------------------------------------


def _absolute_member(tmp_path: Path) -> str:
    return str(tmp_path / "evil")


def _tar_with_device() -> bytes:
    info = tarfile.TarInfo("dev-null")
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return make_tar([info])


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
    from mmkeras.cli import main

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
