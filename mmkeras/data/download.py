"""Download a registered dataset, verify its sha256, and extract it safely.

`download("fsdd")` streams the file into a temporary file next to its final place, hashing it on the way,
and renames it (`os.replace`, atomic) only once its sha256 matches the registry. Cached files are hashed
again on every call, and a cached file whose hash is wrong is downloaded again. Connection errors, timeouts
and HTTP 5xx answers are retried with exponential backoff; a 404 or a checksum mismatch is not (retrying
cannot fix them). Archives are extracted into a temporary folder after every member has been checked (no
absolute paths, no `..`, no link leading outside, no device files), then renamed to `<data_dir>/<name>/`.

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

import hashlib
import http.client
import os
import pathlib
import posixpath
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zipfile
from typing import BinaryIO

from tqdm import tqdm

from mmkeras._validation import check_int, check_number
from mmkeras.data.registry import DatasetSpec, get_spec

DATA_DIR_ENV = "MMKERAS_DATA_DIR"
MIRROR_ENV = "MMKERAS_MIRROR"
DEFAULT_DATA_DIR = "~/.mmkeras/datasets"
CHUNK_SIZE = 1 << 16
MARKER_NAME = ".mmkeras-sha256"
USER_AGENT = "mmkeras-downloader/0.2 (Python urllib)"
_SUFFIXES = {"zip": ".zip", "tar": ".tar", "tar.gz": ".tar.gz"}
_TAR_FILTER_ERROR = getattr(tarfile, "FilterError", ())  # Python < 3.10.12 has no extraction filters


class DownloadError(RuntimeError):
    """A dataset could not be downloaded, verified or extracted."""


class ChecksumError(DownloadError):
    """The sha256 of a file is not the one in the registry (or the registry has none)."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the target folder, or is a link or a device file."""


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

    Returns:
        The extracted folder `<data_dir>/<name>/` for an archive with `extract=True`, else the downloaded
        file.

    Raises:
        ValueError: for an unknown name or a bad argument.
        ChecksumError: the file's sha256 differs from the registry, or the registry has none.
        UnsafeArchiveError: an archive member would land outside the target, or is a link out or a device.
        DownloadError: an HTTP error such as 404, or the retries ran out.

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
    _check_arguments(timeout, retries, backoff)
    if spec.sha256 is None and not allow_unverified:
        raise ChecksumError(
            f"no sha256 is recorded for dataset {spec.name!r}, so its download cannot be verified. Record "
            f"it in mmkeras/data/registry.py (compute it with `python data_scripts/download.py --print-hash "
            f"FILE`) or pass allow_unverified=True."
        )
    root = resolve_data_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    archive = root / _local_filename(spec)
    target = root / spec.name
    extracting = extract and spec.archive_format is not None

    digest = _cached_digest(archive, spec)
    fresh = digest is None
    if fresh and extracting and not archive.exists() and spec.sha256 and _marker(target) == spec.sha256:
        return target  # extracted earlier from a verified file that was then deleted to save space
    if fresh:
        url = resolve_url(spec, base_url)
        digest = _fetch(
            url, archive, spec, timeout=timeout, retries=retries, backoff=backoff, progress=progress
        )
    if not extracting:
        return archive
    if fresh or _marker(target) != digest:
        try:
            _extract(archive, target, spec.archive_format, marker=digest)
        except UnsafeArchiveError:
            archive.unlink(missing_ok=True)
            raise
    return target


def extract_archive(
    archive: str | os.PathLike[str],
    target: str | os.PathLike[str],
    archive_format: str | None = None,
) -> pathlib.Path:
    """Extract a zip or tar(.gz) archive safely and atomically into `target`.

    Every member is checked first: absolute paths, `..` components, links whose target leaves `target`, and
    device or FIFO files raise `UnsafeArchiveError`. The members are written to a temporary sibling folder
    that is renamed to `target` when complete (replacing what was there), so `target` is never half-written.

    Args:
        archive: str or path. The archive file.
        target: str or path. The folder to create (or replace).
        archive_format: str or None. `"zip"`, `"tar"` or `"tar.gz"`. Defaults to a guess from the file name.

    Returns:
        `target` as a `pathlib.Path`.

    Raises:
        UnsafeArchiveError: a member is unsafe; nothing is left behind.
        DownloadError: the file is not a readable archive of that format.

    Example:

    >>> import pathlib, tempfile, zipfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(folder / "a.zip", "w") as archive:
    ...     archive.writestr("a.txt", "A")
    >>> (extract_archive(folder / "a.zip", folder / "a") / "a.txt").read_text()
    'A'
    """
    archive = pathlib.Path(archive)
    return _extract(archive, pathlib.Path(target), archive_format or _guess_format(archive), marker=None)


# --- downloading -------------------------------------------------------------------------------------------


def _check_arguments(timeout: float, retries: int, backoff: float) -> None:
    check_number("timeout", timeout, low=0, low_inclusive=False)
    check_int("retries", retries, minimum=0)
    check_number("backoff", backoff, low=0)


def _local_filename(spec: DatasetSpec) -> str:
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


def _fetch(
    url: str,
    dest: pathlib.Path,
    spec: DatasetSpec,
    *,
    timeout: float,
    retries: int,
    backoff: float,
    progress: bool,
) -> str:
    """Download `url` to `dest` with retries; return the sha256. `dest` appears only once verified."""
    for attempt in range(retries + 1):
        try:
            temp, digest, size = _stream_to_temp(url, dest.parent, spec, timeout=timeout, progress=progress)
            break
        except _TransientError as error:
            if attempt == retries:
                raise DownloadError(
                    f"could not download {spec.name!r} after {attempt + 1} attempt(s): {error}"
                ) from error
            time.sleep(backoff * 2**attempt)
    try:
        _verify(spec, digest, size, url)
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return digest


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


def _stream_to_temp(
    url: str, directory: pathlib.Path, spec: DatasetSpec, *, timeout: float, progress: bool
) -> tuple[pathlib.Path, str, int]:
    """One attempt: stream `url` into a new temporary file in `directory`; return (path, sha256, size)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http, https or file mirror)
    except urllib.error.HTTPError as error:
        error.close()
        message = f"HTTP {error.code} ({error.reason}) for URL {url}"
        if error.code >= 500 or error.code in (408, 429):
            raise _TransientError(message) from None
        raise DownloadError(message) from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, FileNotFoundError):
            raise DownloadError(f"file not found for URL {url}") from None
        raise _TransientError(f"cannot reach URL {url}: {error.reason}") from error
    except (OSError, http.client.HTTPException) as error:
        raise _TransientError(f"cannot reach URL {url}: {error!r}") from error

    with response:
        expected = _content_length(response)
        handle, name = tempfile.mkstemp(dir=directory, prefix=f".{spec.name}.", suffix=".part")
        temp = pathlib.Path(name)
        try:
            with os.fdopen(handle, "wb") as file:
                digest, size = _copy_hashing(response, file, spec, url, total=expected or spec.size_bytes,
                                             progress=progress)
            if expected is not None and size != expected:
                raise _TransientError(f"truncated body from URL {url}: received {size} of {expected} bytes")
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    return temp, digest, size


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _copy_hashing(
    source: BinaryIO, sink: BinaryIO, spec: DatasetSpec, url: str, *, total: int | None, progress: bool
) -> tuple[str, int]:
    """Copy `source` to `sink` chunk by chunk; return (sha256, size). Read failures are transient."""
    digest = hashlib.sha256()
    size = 0
    read = getattr(source, "read1", source.read)  # read1 returns what has arrived, not a full chunk
    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=spec.name,
              disable=not progress) as bar:
        while True:
            try:
                chunk = read(CHUNK_SIZE)
            except (OSError, http.client.HTTPException) as error:  # timeout, reset, IncompleteRead
                raise _TransientError(
                    f"download from URL {url} interrupted after {size} bytes: {error!r}"
                ) from error
            if not chunk:
                return digest.hexdigest(), size
            sink.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            bar.update(len(chunk))


# --- extracting --------------------------------------------------------------------------------------------


def _guess_format(archive: pathlib.Path) -> str:
    name = archive.name.lower()
    suffixes = {".zip": "zip", ".tar.gz": "tar.gz", ".tgz": "tar.gz", ".tar": "tar"}
    for suffix, archive_format in suffixes.items():
        if name.endswith(suffix):
            return archive_format
    raise ValueError(
        f"Cannot tell the archive format from the file name; pass `archive_format`. "
        f"Received: {archive.name!r}"
    )


def _marker(target: pathlib.Path) -> str | None:
    """The sha256 of the archive `target` was extracted from, if `target` is a complete extraction."""
    try:
        return (target / MARKER_NAME).read_text().strip()
    except OSError:
        return None


def _extract(archive: pathlib.Path, target: pathlib.Path, archive_format: str | None, marker: str | None
             ) -> pathlib.Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(
        tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".extracting")
    )
    try:
        if archive_format == "zip":
            _extract_zip(archive, staging)
        elif archive_format in ("tar", "tar.gz"):
            _extract_tar(archive, staging)
        else:
            raise ValueError(
                f"`archive_format` must be 'zip', 'tar' or 'tar.gz'. "
                f"Received: archive_format={archive_format!r}"
            )
        _check_links_inside(staging, archive)
        if marker is not None:
            (staging / MARKER_NAME).write_text(marker + "\n")
        _replace_dir(staging, target)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise DownloadError(f"cannot extract {str(archive)!r} into {str(target)!r}: {error}") from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _unsafe(archive: pathlib.Path, member: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"unsafe path in archive {archive.name!r}: {member!r} ({why})")


def _check_name(archive: pathlib.Path, name: str) -> None:
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        raise _unsafe(archive, name, "absolute path")
    if ".." in normalized.split("/"):
        raise _unsafe(archive, name, "'..' component")


def _check_link(archive: pathlib.Path, name: str, link: str, relative_to: str) -> None:
    """Reject a link whose target is absolute or leaves the extraction folder."""
    normalized = link.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        raise _unsafe(archive, name, f"link to absolute path {link!r}")
    resolved = posixpath.normpath(posixpath.join(relative_to, normalized))
    if resolved == ".." or resolved.startswith("../"):
        raise _unsafe(archive, name, f"link to {link!r} leaves the target folder")


def _check_not_through_link(archive: pathlib.Path, name: str, links: set[str]) -> None:
    """Reject a member written through a symlink of the same archive (`a -> ..`, then `a/b/evil`)."""
    parts = posixpath.normpath(name).split("/")
    for end in range(1, len(parts)):
        if "/".join(parts[:end]) in links:
            raise _unsafe(archive, name, f"written through the link {'/'.join(parts[:end])!r}")


def _extract_tar(archive: pathlib.Path, staging: pathlib.Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            links: set[str] = set()
            for member in members:
                _check_name(archive, member.name)
                _check_not_through_link(archive, member.name, links)
                if member.isdev():
                    raise _unsafe(archive, member.name, "device or FIFO file")
                if member.issym():
                    _check_link(archive, member.name, member.linkname, posixpath.dirname(member.name))
                    links.add(posixpath.normpath(member.name))
                elif member.islnk():
                    _check_link(archive, member.name, member.linkname, "")
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12: a second, independent check
                tar.extractall(staging, members=members, filter="data")
            else:  # pragma: no cover - older Pythons; every member was checked above
                tar.extractall(staging, members=members)  # noqa: S202
    except _TAR_FILTER_ERROR as error:
        raise UnsafeArchiveError(f"unsafe path in archive {archive.name!r}: {error}") from error
    except tarfile.TarError as error:
        raise DownloadError(f"cannot read tar archive {str(archive)!r}: {error}") from error


def _extract_zip(archive: pathlib.Path, staging: pathlib.Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                _check_name(archive, info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                    raise _unsafe(archive, info.filename, "device or FIFO file")
                if stat.S_ISLNK(mode):  # zipfile writes links as small text files; still refuse escapes
                    link = zipped.read(info).decode("utf-8", errors="replace")
                    _check_link(archive, info.filename, link, posixpath.dirname(info.filename))
            zipped.extractall(staging)
    except zipfile.BadZipFile as error:
        raise DownloadError(f"cannot read zip archive {str(archive)!r}: {error}") from error


def _check_links_inside(staging: pathlib.Path, archive: pathlib.Path) -> None:
    """After extraction, every symlink must still resolve inside `staging` (defence in depth)."""
    root = os.path.realpath(staging)
    for folder, dirs, files in os.walk(staging):
        for entry in dirs + files:
            path = os.path.join(folder, entry)
            if os.path.islink(path) and os.path.commonpath([root, os.path.realpath(path)]) != root:
                raise _unsafe(archive, os.path.relpath(path, staging), "link leaves the target folder")


def _replace_dir(staging: pathlib.Path, target: pathlib.Path) -> None:
    """Rename `staging` to `target`, moving an existing `target` aside first and deleting it afterwards."""
    if not (target.exists() or target.is_symlink()):
        os.replace(staging, target)
        return
    trash = pathlib.Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
    os.replace(target, trash / target.name)
    os.replace(staging, target)
    shutil.rmtree(trash, ignore_errors=True)
