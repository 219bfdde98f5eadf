"""Download a registered dataset, verify its sha256, and extract it safely.

`download("fsdd")` streams the file into a temporary file next to its final place, hashing it on the way,
and renames it (`os.replace`, atomic) only once its sha256 matches the registry. Cached files are hashed
again on every call, and a cached file whose hash is wrong is downloaded again. Connection errors, timeouts
and HTTP 5xx answers are retried with exponential backoff; a 404 or a checksum mismatch is not (retrying
cannot fix them). A download stops as soon as more than the expected size (the registry's `size_bytes`, else the
server's Content-Length) plus a small margin has arrived, and the whole download, retries included, has a
deadline, so neither an endless nor a dripping body can fill the disk or hang the caller. Temporary files left by
a killed process are swept before the next download of the same file (`mmkeras.data.leftovers`). Archives are
extracted by `mmkeras.data.extract`: into a temporary folder after every member has been checked (no absolute
paths, no `..`, no duplicate names, no link leading outside or through another link, no device files), then
renamed to `<data_dir>/<name>/`; the same rules hold on a Python without `tarfile.data_filter`.

Where things go:

- the data directory is the `data_dir` argument, else `$MMKERAS_DATA_DIR`, else `~/.mmkeras/datasets`;
- the downloaded file is `<data_dir>/<name><suffix>` (e.g. `fsdd.tar.gz`, `mnist.npz`), kept so that it can be
  verified again; an archive is extracted into `<data_dir>/<name>/`;
- a mirror (`base_url`, else `$MMKERAS_MIRROR`) replaces everything before the file name of the URL, so
  `MMKERAS_MIRROR=https://mirror.example.org/mmkeras` fetches `https://mirror.example.org/mmkeras/v1.0.9.tar.gz`
  for `fsdd`. A `file://` mirror (a shared folder) works too.

Why `urllib.request` and not `pooch` (considered, and not a dependency): the rules above need control that pooch
does not give. Its `retry_if_failed` retries every failure alike, a hash mismatch or a 404 as well as a
dropped connection, with a linear wait; it downloads through `requests`, which is not a declared dependency
of mmkeras; and its `Untar` processor uses the tar "data" filter only on Python >= 3.12, while `Unzip` does
not look at links. The standard library streams, times out per socket operation and follows redirects by
itself, so the whole policy fits in this one small module with no extra dependency; `tqdm` draws the
progress bar.

Example:

```python
from mmkeras.data.download import download

recordings = download("fsdd") / "free-spoken-digit-dataset-1.0.9" / "recordings"  # a folder of .wav files
mnist_npz = download("mnist")  # a plain file: verified, not extracted
```
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import pathlib
import socket
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from typing import BinaryIO

from tqdm import tqdm

from mmkeras._validation import check_int, check_number
from mmkeras.data.errors import ChecksumError, DownloadError, UnsafeArchiveError
from mmkeras.data.extract import extract_archive, extract_into, read_marker
from mmkeras.data.leftovers import sweep_stale, temp_prefix
from mmkeras.data.registry import DatasetSpec, get_spec

__all__ = [
    "ChecksumError", "DownloadError", "UnsafeArchiveError", "default_deadline", "download", "extract_archive",
    "file_sha256", "resolve_data_dir", "resolve_url", "size_limit",
]

DATA_DIR_ENV = "MMKERAS_DATA_DIR"
MIRROR_ENV = "MMKERAS_MIRROR"
DEFAULT_DATA_DIR = "~/.mmkeras/datasets"
CHUNK_SIZE = 1 << 16
USER_AGENT = "mmkeras-downloader/0.2 (Python urllib)"
SIZE_MARGIN_BYTES = 1 << 20  # a body may exceed its expected size by this much (or by 1 %, if more) ...
SIZE_MARGIN_FRACTION = 0.01  # ... before the download stops: only a registry size that is a little off gets by
DEADLINE_FLOOR_SECONDS = 900.0  # an automatic deadline is never shorter than 15 minutes ...
SLOWEST_RATE_BYTES = 32 * 1024  # ... and allows 32 KiB/s (a poor mobile link) for the expected size
DEADLINE_UNKNOWN_SIZE_SECONDS = 6 * 3600.0  # the deadline when nothing tells the size (an unverified dataset)
_SUFFIXES = {"zip": ".zip", "tar": ".tar", "tar.gz": ".tar.gz"}


class _TransientError(DownloadError):
    """A failure that another attempt may not meet: connection error, timeout, truncated body, HTTP 5xx."""


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """Return the folder that holds downloaded datasets.

    Args:
        data_dir: str or path or None. Explicit folder. Defaults to `$MMKERAS_DATA_DIR`, else
            `~/.mmkeras/datasets`.

    Returns:
        The folder as an absolute `pathlib.Path` (not created).

    Example:

    >>> resolve_data_dir("/tmp/mmkeras-data").as_posix()
    '/tmp/mmkeras-data'
    """
    chosen = data_dir if data_dir is not None else (os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)
    return pathlib.Path(chosen).expanduser().absolute()


def resolve_url(spec: DatasetSpec, base_url: str | None = None) -> str:
    """Return the URL to fetch `spec` from, honouring a mirror.

    Args:
        spec: DatasetSpec. The dataset.
        base_url: str or None. Mirror base; the file name of `spec.url` is appended to it. Defaults to
            `$MMKERAS_MIRROR`; without either, `spec.url` itself.

    Returns:
        The URL as a string.

    Example:

    >>> from mmkeras.data.registry import get_spec
    >>> resolve_url(get_spec("fsdd"), "https://mirror.example.org/data/")
    'https://mirror.example.org/data/v1.0.9.tar.gz'
    """
    base = base_url if base_url is not None else os.environ.get(MIRROR_ENV, "")
    if not base:
        return spec.url
    return f"{base.rstrip('/')}/{spec.filename}"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the hex sha256 of a file, read in chunks (never whole into memory).

    Args:
        path: str or path. The file.

    Returns:
        64 lowercase hex characters.

    Example:

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "empty"
    >>> _ = path.write_bytes(b"")
    >>> file_sha256(path)[:16]
    'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    name_or_spec: str | DatasetSpec,
    data_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    timeout: float = 30,
    retries: int = 3,
    progress: bool = True,
    extract: bool = True,
    *,
    backoff: float = 1.0,
    allow_unverified: bool = False,
    deadline: float | None = None,
) -> pathlib.Path:
    """Download a dataset (or reuse the verified cached copy), check its sha256 and extract it.

    Args:
        name_or_spec: str or DatasetSpec. A registry name such as `"fsdd"`, or a spec.
        data_dir: str or path or None. Where datasets live. Defaults to `$MMKERAS_DATA_DIR`, else
            `~/.mmkeras/datasets`.
        base_url: str or None. Mirror serving the same file name. Defaults to `$MMKERAS_MIRROR`, else none.
        timeout: float. Seconds a connection or a single read may stall before the attempt fails.
            Defaults to `30`.
        retries: int. Attempts after the first one, for connection errors, timeouts, truncated bodies and
            HTTP 5xx/408/429. Defaults to `3`.
        progress: bool. Show a tqdm progress bar. Defaults to `True`.
        extract: bool. Extract an archive into `<data_dir>/<name>/`. Defaults to `True`.
        backoff: float. The n-th retry waits `backoff * 2**n` seconds. Defaults to `1.0`.
        allow_unverified: bool. Accept a spec without a sha256 (a warning then prints the hash to record).
            Defaults to `False`.
        deadline: float or None. Seconds the whole download may take, retries and waits included; a server
            that keeps sending a byte now and then never trips `timeout`, but ends here. Defaults to
            `default_deadline(spec)`: 15 minutes, or the time to fetch the registry's size at 32 KiB/s if
            longer, or 6 hours when the size is not recorded.

    Returns:
        The extracted folder `<data_dir>/<name>/` for an archive with `extract=True`, else the downloaded
        file.

    Raises:
        ValueError: for an unknown name or a bad argument.
        ChecksumError: the file's sha256 differs from the registry, or the registry has none.
        UnsafeArchiveError: an archive member would land outside the target, or is a link out or a device.
        DownloadError: an HTTP error such as 404, the retries ran out, the body is larger than expected
            (`size_limit`), or the deadline passed.

    Example:

    >>> # Offline: a local folder plays the mirror; the checksum is checked all the same.
    >>> import hashlib, pathlib, tempfile, zipfile
    >>> from mmkeras.data.registry import DatasetSpec
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(folder / "toy.zip", "w") as archive:
    ...     archive.writestr("toy/hello.txt", "hello")
    >>> spec = DatasetSpec(
    ...     name="toy", url="https://example.org/files/toy.zip",
    ...     sha256=hashlib.sha256((folder / "toy.zip").read_bytes()).hexdigest(), size_bytes=None,
    ...     license="CC0-1.0", citation="-", archive_format="zip", description="A toy archive.",
    ... )
    >>> path = download(spec, data_dir=folder / "data", base_url=folder.as_uri(), progress=False)
    >>> (path / "toy" / "hello.txt").read_text()
    'hello'
    """
    spec = name_or_spec if isinstance(name_or_spec, DatasetSpec) else get_spec(name_or_spec)
    _check_arguments(timeout, retries, backoff, deadline)
    if spec.sha256 is None and not allow_unverified:
        raise ChecksumError(
            f"no sha256 is recorded for dataset {spec.name!r}, so its download cannot be verified. Record "
            f"it in mmkeras/data/registry.py (compute it with `python data_scripts/download.py --print-hash "
            f"FILE`) or pass allow_unverified=True."
        )
    root = resolve_data_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    archive = root / local_filename(spec)
    target = root / spec.name
    extracting = extract and spec.archive_format is not None

    digest = _cached_digest(archive, spec)
    fresh = digest is None
    if fresh and extracting and not archive.exists() and spec.sha256 and read_marker(target) == spec.sha256:
        return target  # extracted earlier from a verified file that was then deleted to save space
    if fresh:
        url = resolve_url(spec, base_url)
        seconds = default_deadline(spec) if deadline is None else float(deadline)
        digest = _fetch(url, archive, spec, timeout=timeout, retries=retries, backoff=backoff, progress=progress,
                        ends_at=time.monotonic() + seconds, deadline=seconds)
    if not extracting:
        return archive
    if fresh or read_marker(target) != digest:
        try:
            extract_into(archive, target, spec.archive_format, marker=digest)
        except UnsafeArchiveError:
            archive.unlink(missing_ok=True)
            raise
    return target


def default_deadline(spec: DatasetSpec) -> float:
    """Seconds one download of `spec` may take when `download(deadline=None)`.

    At least `DEADLINE_FLOOR_SECONDS` (15 minutes), more for a large file: its registry size at
    `SLOWEST_RATE_BYTES` (32 KiB/s). Without a recorded size, `DEADLINE_UNKNOWN_SIZE_SECONDS` (6 hours).

    Example:

    >>> from mmkeras.data.registry import get_spec
    >>> default_deadline(get_spec("mnist"))  # 11 MB: the floor
    900.0
    """
    if spec.size_bytes is None:
        return DEADLINE_UNKNOWN_SIZE_SECONDS
    return max(DEADLINE_FLOOR_SECONDS, spec.size_bytes / SLOWEST_RATE_BYTES)


def size_limit(expected: int) -> int:
    """The most bytes a download whose expected size is `expected` may receive: the size plus a small margin.

    The margin is `SIZE_MARGIN_BYTES` (1 MiB) or `SIZE_MARGIN_FRACTION` (1 %) of the size, whichever is larger.
    A file with a sha256 cannot have any other size anyway; the margin only helps a registry size that is a
    little off for an unverified dataset.

    Example:

    >>> size_limit(11_490_434)  # mnist.npz: 11.0 MiB + 1 MiB
    12539010
    """
    return expected + max(SIZE_MARGIN_BYTES, int(expected * SIZE_MARGIN_FRACTION))


# --- downloading -------------------------------------------------------------------------------------------


def _check_arguments(timeout: float, retries: int, backoff: float, deadline: float | None) -> None:
    check_number("timeout", timeout, low=0, low_inclusive=False)
    check_int("retries", retries, minimum=0)
    check_number("backoff", backoff, low=0)
    if deadline is not None:
        check_number("deadline", deadline, low=0, low_inclusive=False)


def local_filename(spec: DatasetSpec) -> str:
    """`<name><suffix>`: `fsdd.tar.gz`, `esc50.zip`; a plain file keeps its own suffix (`mnist.npz`)."""
    if spec.archive_format is None:
        return spec.name + "".join(pathlib.PurePosixPath(spec.filename).suffixes)
    return spec.name + _SUFFIXES[spec.archive_format]


def _cached_digest(path: pathlib.Path, spec: DatasetSpec) -> str | None:
    """Return the sha256 of a usable cached file, or None when it must be downloaded (again)."""
    if not path.is_file():
        return None
    digest = file_sha256(path)
    if spec.sha256 is None:
        warnings.warn(
            f"using the unverified cached file {str(path)!r} for {spec.name!r}: sha256={digest}",
            stacklevel=3,
        )
        return digest
    if digest != spec.sha256:
        warnings.warn(
            f"cached file {str(path)!r} has sha256={digest}, expected sha256={spec.sha256}: "
            f"downloading again",
            stacklevel=3,
        )
        return None
    return digest


@dataclasses.dataclass(frozen=True)
class _Clock:
    """The time one download may take: `timeout` per connection or read, all of it done by `ends_at`."""

    timeout: float
    ends_at: float  # a time.monotonic() value
    deadline: float  # the whole allowance in seconds, for messages

    def left(self) -> float:
        return self.ends_at - time.monotonic()

    def passed(self) -> bool:
        return self.left() <= 0.01  # a socket timeout set to `left()` fires at (or just after) `ends_at`

    def wait(self) -> float:
        """The socket timeout for the next connection or read: `timeout`, or less when the deadline is near."""
        return max(min(self.timeout, self.left()), 0.001)


def _fetch(url: str, dest: pathlib.Path, spec: DatasetSpec, *, timeout: float, retries: int, backoff: float,
           progress: bool, ends_at: float, deadline: float) -> str:
    """Download `url` to `dest` with retries, all done by `ends_at`; return the sha256. `dest` appears only
    once verified. Stale `.part` files of `spec` (left by a killed process) are removed first."""
    sweep_stale(dest.parent, spec.name, ("part",))
    clock = _Clock(timeout=timeout, ends_at=ends_at, deadline=deadline)
    for attempt in range(retries + 1):
        try:
            temp, digest, size = _stream_to_temp(url, dest.parent, spec, clock=clock, progress=progress)
            break
        except _TransientError as error:
            if attempt == retries:
                raise DownloadError(
                    f"could not download {spec.name!r} after {attempt + 1} attempt(s): {error}"
                ) from error
            wait = backoff * 2**attempt
            if clock.left() <= wait:
                raise _deadline_error(spec, url, clock, f"{attempt + 1} attempt(s), the last one: {error}") from error
            time.sleep(wait)
    try:
        _verify(spec, digest, size, url)
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return digest


def _deadline_error(spec: DatasetSpec, url: str, clock: _Clock, what: str) -> DownloadError:
    return DownloadError(
        f"download of {spec.name!r} from URL {url} did not finish within its deadline of {clock.deadline:g} s "
        f"({what}). On a slow connection, allow more time: download(..., deadline=SECONDS) or --deadline SECONDS."
    )


def _verify(spec: DatasetSpec, digest: str, size: int, url: str) -> None:
    if spec.sha256 is None:
        warnings.warn(
            f"downloaded {spec.name!r} without verification ({size} bytes from {url}): sha256={digest}. "
            f"Record this hash in the registry once you trust the file.",
            stacklevel=4,
        )
    elif digest != spec.sha256:
        raise ChecksumError(
            f"checksum mismatch for {spec.name}: expected sha256={spec.sha256}, received sha256={digest} "
            f"({size} bytes from {url})"
        )


@dataclasses.dataclass(frozen=True)
class _Size:
    """The size a body should have, where that figure comes from, and the most bytes accepted."""

    expected: int | None
    source: str
    limit: int | None

    @classmethod
    def of(cls, spec: DatasetSpec, announced: int | None) -> _Size:
        if spec.size_bytes is not None and (spec.sha256 is not None or announced is None):
            return cls(spec.size_bytes, "size_bytes in the registry", size_limit(spec.size_bytes))
        if announced is not None:  # no size recorded, or an unverified dataset whose size is only a hint
            return cls(announced, "the server's Content-Length", size_limit(announced))
        return cls(None, "unknown", None)

    def too_large(self, spec: DatasetSpec, url: str, received: int, verb: str = "arrived") -> DownloadError:
        return DownloadError(
            f"download of {spec.name!r} from URL {url} stopped: {received} bytes {verb}, more than the "
            f"{self.expected} bytes expected ({self.source}) plus a margin (at most {self.limit} bytes are "
            f"accepted). The server sends another or a broken file."
        )


def _stream_to_temp(url: str, directory: pathlib.Path, spec: DatasetSpec, *, clock: _Clock, progress: bool
                    ) -> tuple[pathlib.Path, str, int]:
    """One attempt: stream `url` into a new temporary file in `directory`; return (path, sha256, size)."""
    if clock.passed():
        raise _deadline_error(spec, url, clock, "no time left for another attempt")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        response = urllib.request.urlopen(request, timeout=clock.wait())  # noqa: S310 (http, https or file mirror)
    except urllib.error.HTTPError as error:
        error.close()
        message = f"HTTP {error.code} ({error.reason}) for URL {url}"
        if error.code >= 500 or error.code in (408, 429):
            raise _TransientError(message) from None
        raise DownloadError(message) from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, FileNotFoundError):
            raise DownloadError(f"file not found for URL {url}") from None
        if clock.passed():
            raise _deadline_error(spec, url, clock, f"no answer: {error.reason}") from error
        raise _TransientError(f"cannot reach URL {url}: {error.reason}") from error
    except (OSError, http.client.HTTPException) as error:
        if clock.passed():
            raise _deadline_error(spec, url, clock, f"no answer: {error or repr(error)}") from error
        raise _TransientError(f"cannot reach URL {url}: {error!r}") from error

    with response:
        announced = _content_length(response)
        size_plan = _Size.of(spec, announced)
        if size_plan.limit is not None and announced is not None and announced > size_plan.limit:
            raise size_plan.too_large(spec, url, announced, verb="announced (Content-Length)")
        handle, name = tempfile.mkstemp(dir=directory, prefix=temp_prefix(spec.name), suffix=".part")
        temp = pathlib.Path(name)
        try:
            with os.fdopen(handle, "wb") as file:
                digest, size = _copy_hashing(response, file, spec, url, size_plan=size_plan, clock=clock,
                                             progress=progress)
            if announced is not None and size != announced:
                raise _TransientError(f"truncated body from URL {url}: received {size} of {announced} bytes")
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    return temp, digest, size


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _socket_of(response: object) -> socket.socket | None:
    """The socket under an `http.client.HTTPResponse` (None for a `file://` mirror): its timeout is lowered when
    the deadline is nearer than `timeout`. This reads private attributes, so anything unexpected gives None."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _copy_hashing(source: BinaryIO, sink: BinaryIO, spec: DatasetSpec, url: str, *, size_plan: _Size,
                  clock: _Clock, progress: bool) -> tuple[str, int]:
    """Copy `source` to `sink` chunk by chunk; return (sha256, size). Read failures are transient; a body
    larger than `size_plan.limit` or a passed deadline end the download (nothing over the limit is written)."""
    digest = hashlib.sha256()
    size = 0
    read = getattr(source, "read1", source.read)  # read1 returns what has arrived, not a full chunk
    sock = _socket_of(source)
    total = size_plan.expected
    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=spec.name,
              disable=not progress) as bar:
        while True:
            received = f"received {size} of {total if total is not None else 'an unknown number of'} bytes"
            if clock.passed():
                raise _deadline_error(spec, url, clock, received)
            if sock is not None:
                try:
                    sock.settimeout(clock.wait())
                except OSError:  # closed: the body is complete and the next read returns b""
                    pass
            try:
                chunk = read(CHUNK_SIZE)
            except (OSError, http.client.HTTPException) as error:  # timeout, reset, IncompleteRead
                if clock.passed():
                    raise _deadline_error(spec, url, clock, received) from error
                raise _TransientError(
                    f"download from URL {url} interrupted after {size} bytes: {error!r}"
                ) from error
            if not chunk:
                return digest.hexdigest(), size
            if size_plan.limit is not None and size + len(chunk) > size_plan.limit:
                raise size_plan.too_large(spec, url, size + len(chunk))
            sink.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            bar.update(len(chunk))
