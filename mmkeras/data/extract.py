"""Extract zip and tar(.gz) archives safely and atomically, on every supported Python.

The rules for a tar archive, checked on the member list before anything is written (`_check_tar_members`):

- names: no absolute path, no `..` component, no name used twice (a second member of the same name would be
  written through the first one: a hard link to a file outside, or a link swapped in after the checks), nothing
  stored inside a link or a file of the archive;
- types: regular files, directories, symbolic links and hard links only (no device, FIFO or other special file);
- symbolic links: a relative target that stays inside the target folder and does not pass through another link
  of the archive (`s -> .` and `t -> s/..` are both "." on paper, but `t` is the folder *above* `s`);
- hard links: to a regular file stored earlier in the same archive, named without passing through a link.

The members are then written by tarfile's own "data" filter (`filter="data"`, Python >= 3.10.12 / 3.11.4 / 3.12),
a second and independent check. Where that filter is missing (for instance Debian 12's python3 3.11.2),
`_write_tar_members` writes them itself with the same rules, checked on the disk this time: it never writes
through a symbolic link (every folder on the way is checked with `lstat`), creates files with `O_EXCL` and
`O_NOFOLLOW` (never through or over an existing entry), creates a symbolic link only if its target resolves inside
the folder, and a hard link only to a regular file it wrote itself. Modes follow the data filter (no set-uid bits,
no group or other write permission, owner read and write) and ownership is not restored.

Zip archives are checked for absolute paths, `..`, duplicate names, device files and links whose target leaves the
folder (`zipfile` stores links as small text files, so it never writes through one).

Everything is written into a temporary sibling folder `.<target>.<host>-<pid>.<random>.extracting`; every
symbolic link is resolved once more when all members are written; only then is the folder renamed to `target`.
On any error it is deleted, so `target` is never half-written; the leftovers of a killed process are swept by the
next extraction (`mmkeras.data.leftovers`).

Example:

>>> import io, pathlib, tarfile, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with tarfile.open(folder / "links.tar", "w") as archive:
...     for name, target in [("s", "."), ("t", "s/..")]:
...         link = tarfile.TarInfo(name)
...         link.type, link.linkname = tarfile.SYMTYPE, target
...         archive.addfile(link)
>>> try:
...     extract_archive(folder / "links.tar", folder / "out")
... except UnsafeArchiveError as error:
...     print(error)
unsafe path in archive 'links.tar': 't' (link to 's/..' passes through the link 's')
>>> (folder / "out").exists()
False
"""

from __future__ import annotations

import os
import pathlib
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile

from mmkeras.data.errors import DownloadError, UnsafeArchiveError
from mmkeras.data.leftovers import sweep_stale, temp_prefix

MARKER_NAME = ".mmkeras-sha256"
_CHUNK_SIZE = 1 << 16
_TAR_FILTER_ERROR = getattr(tarfile, "FilterError", ())  # Python < 3.10.12 has no extraction filters
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def extract_archive(
    archive: str | os.PathLike[str],
    target: str | os.PathLike[str],
    archive_format: str | None = None,
) -> pathlib.Path:
    """Extract a zip or tar(.gz) archive safely and atomically into `target`.

    Every member is checked first (see the module docstring): absolute paths, `..` components, duplicate names,
    links whose target leaves `target` or passes through another link, hard links to anything but an earlier file
    of the archive, and device or FIFO files raise `UnsafeArchiveError`. The members are written to a temporary
    sibling folder that is renamed to `target` when complete (replacing what was there), so `target` is never
    half-written. The rules hold whether or not this Python has `tarfile.data_filter`.

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
    return extract_into(archive, pathlib.Path(target), archive_format or guess_format(archive), marker=None)


def guess_format(archive: pathlib.Path) -> str:
    """`"zip"`, `"tar.gz"` or `"tar"` from the file name; `ValueError` for anything else."""
    name = archive.name.lower()
    suffixes = {".zip": "zip", ".tar.gz": "tar.gz", ".tgz": "tar.gz", ".tar": "tar"}
    for suffix, archive_format in suffixes.items():
        if name.endswith(suffix):
            return archive_format
    raise ValueError(
        f"Cannot tell the archive format from the file name; pass `archive_format`. "
        f"Received: {archive.name!r}"
    )


def read_marker(target: pathlib.Path) -> str | None:
    """The sha256 of the archive `target` was extracted from, if `target` is a complete extraction."""
    try:
        return (target / MARKER_NAME).read_text().strip()
    except OSError:
        return None


def extract_into(archive: pathlib.Path, target: pathlib.Path, archive_format: str | None, marker: str | None
                 ) -> pathlib.Path:
    """Extract into a staging folder, check it, write `marker` (a sha256) into it, and rename it to `target`."""
    if archive_format not in ("zip", "tar", "tar.gz"):
        raise ValueError(
            f"`archive_format` must be 'zip', 'tar' or 'tar.gz'. Received: archive_format={archive_format!r}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target.parent, target.name, ("extracting", "old"))
    staging = pathlib.Path(tempfile.mkdtemp(dir=target.parent, prefix=temp_prefix(target.name), suffix=".extracting"))
    try:
        if archive_format == "zip":
            _extract_zip(archive, staging)
        else:
            _extract_tar(archive, staging)
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


# --- rules on names and links (no disk access) --------------------------------------------------------------


def _unsafe(archive: pathlib.Path, member: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"unsafe path in archive {archive.name!r}: {member!r} ({why})")


def _is_absolute(path: str) -> bool:
    return path.startswith("/") or (len(path) > 1 and path[1] == ":")


def _check_name(archive: pathlib.Path, name: str) -> str:
    """Refuse an absolute name or a `..` component; return the name normalized (`./a//b/` -> `a/b`, `./` -> `.`)."""
    normalized = name.replace("\\", "/")
    if _is_absolute(normalized):
        raise _unsafe(archive, name, "absolute path")
    if ".." in normalized.split("/"):
        raise _unsafe(archive, name, "'..' component")
    return posixpath.normpath(normalized)


def _link_destination(archive: pathlib.Path, name: str, link: str, start: str, kinds: dict[str, str]) -> str:
    """Follow `link` from the folder `start` one component at a time, as the disk will; return where it lands.

    `kinds` maps the names stored so far to `"dir"`, `"file"` or `"symlink"`. A target that is absolute, climbs
    above the target folder, or passes through a symbolic link of the archive is refused: `t -> s/..` with
    `s -> .` lands above the folder, although `s/..` normalizes to `.`.
    """
    normalized = link.replace("\\", "/")
    if _is_absolute(normalized):
        raise _unsafe(archive, name, f"link to absolute path {link!r}")
    stack = [part for part in start.split("/") if part not in ("", ".")]
    for part in normalized.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                raise _unsafe(archive, name, f"link to {link!r} leaves the target folder")
            stack.pop()
            continue
        stack.append(part)
        if kinds.get("/".join(stack)) == "symlink":
            raise _unsafe(archive, name, f"link to {link!r} passes through the link {'/'.join(stack)!r}")
    return "/".join(stack) or "."


def _check_tar_members(archive: pathlib.Path, members: list[tarfile.TarInfo]) -> None:
    """Apply the rules of the module docstring to the whole member list, before anything is written."""
    kinds: dict[str, str] = {".": "dir"}  # what each name is once extracted; parents count as folders
    for member in members:
        name = _check_name(archive, member.name)
        parts = name.split("/")
        for end in range(1, len(parts)):
            prefix = "/".join(parts[:end])
            kind = kinds.setdefault(prefix, "dir")
            if kind == "symlink":
                raise _unsafe(archive, member.name, f"written through the link {prefix!r}")
            if kind == "file":
                raise _unsafe(archive, member.name, f"stored inside the file {prefix!r}")
        earlier = kinds.get(name)
        if member.isdir():
            if earlier not in (None, "dir"):
                raise _unsafe(archive, member.name, "a folder with the name of an earlier member")
            kinds[name] = "dir"
            continue
        if earlier is not None:
            raise _unsafe(archive, member.name, "duplicate name: an earlier member has it")
        if member.issym():
            _link_destination(archive, member.name, member.linkname, posixpath.dirname(name), kinds)
            kinds[name] = "symlink"
        elif member.islnk():
            destination = _link_destination(archive, member.name, member.linkname, "", kinds)
            if kinds.get(destination) != "file":
                raise _unsafe(archive, member.name,
                              f"hard link to {member.linkname!r}, which is not a file stored earlier")
            kinds[name] = "file"
        elif member.isreg():
            kinds[name] = "file"
        elif member.isdev():
            raise _unsafe(archive, member.name, "device or FIFO file")
        else:
            raise _unsafe(archive, member.name, f"unsupported member type {member.type!r}")


# --- tar -------------------------------------------------------------------------------------------------------


def _extract_tar(archive: pathlib.Path, staging: pathlib.Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            _check_tar_members(archive, members)
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4: a second, independent check
                tar.extractall(staging, members=members, filter="data")
            else:  # the same rules, applied by hand on the disk
                _write_tar_members(archive, tar, members, staging)
    except _TAR_FILTER_ERROR as error:
        raise UnsafeArchiveError(f"unsafe path in archive {archive.name!r}: {error}") from error
    except tarfile.TarError as error:
        raise DownloadError(f"cannot read tar archive {str(archive)!r}: {error}") from error


def _write_tar_members(archive: pathlib.Path, tar: tarfile.TarFile, members: list[tarfile.TarInfo],
                       staging: pathlib.Path) -> None:
    """Write `members` into the empty folder `staging` as the "data" filter would, checking every step on disk.

    It relies on nothing `_check_tar_members` found: the checks here see the disk as it is, links included.
    """
    root = os.path.realpath(staging)
    written: set[str] = set()  # regular files written here: the only valid hard-link targets
    for member in members:
        name = _check_name(archive, member.name)
        if name == ".":
            continue
        parts = name.split("/")
        if member.isdir():
            _real_folder(archive, member.name, root, parts, create=True)
            continue
        path = os.path.join(_real_folder(archive, member.name, root, parts[:-1], create=True), parts[-1])
        if os.path.lexists(path):
            raise _unsafe(archive, member.name, "duplicate name: an earlier member has it")
        if member.isreg():
            _write_file(tar, member, path)
            written.add(name)
        elif member.islnk():
            source = posixpath.normpath(member.linkname.replace("\\", "/"))
            if source not in written:
                raise _unsafe(archive, member.name,
                              f"hard link to {member.linkname!r}, which is not a file written earlier")
            source_path = os.path.join(_real_folder(archive, member.name, root, source.split("/")[:-1]),
                                       posixpath.basename(source))
            if not stat.S_ISREG(os.lstat(source_path).st_mode):
                raise _unsafe(archive, member.name, f"hard link to {member.linkname!r}, which is not a file")
            try:
                os.link(source_path, path)
            except OSError:  # a file system without hard links: a copy holds the same bytes
                shutil.copyfile(source_path, path)
            _set_mode_and_time(member, path)  # as tarfile does, on the shared file
            written.add(name)
        elif member.issym():
            if _is_absolute(member.linkname.replace("\\", "/")):
                raise _unsafe(archive, member.name, f"link to absolute path {member.linkname!r}")
            resolved = os.path.realpath(os.path.join(os.path.dirname(path), member.linkname))
            if not _inside(root, resolved):
                raise _unsafe(archive, member.name, f"link to {member.linkname!r} leaves the target folder")
            os.symlink(member.linkname, path)
        elif member.isdev():
            raise _unsafe(archive, member.name, "device or FIFO file")
        else:
            raise _unsafe(archive, member.name, f"unsupported member type {member.type!r}")


def _real_folder(archive: pathlib.Path, member: str, root: str, parts: list[str], create: bool = False) -> str:
    """`root/parts...`, each step a real folder (never a link, never a file); missing ones made if `create`."""
    path = root
    for part in parts:
        if part in ("", "."):
            continue
        path = os.path.join(path, part)
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(path)
            continue
        if stat.S_ISLNK(mode):
            raise _unsafe(archive, member, f"written through the link {os.path.relpath(path, root)!r}")
        if not stat.S_ISDIR(mode):
            raise _unsafe(archive, member, f"stored inside the file {os.path.relpath(path, root)!r}")
    return path


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> None:
    """Create `path` (never through or over an existing entry) with the member's bytes, mode and time."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW, 0o600)
    with os.fdopen(handle, "wb") as sink:
        source = tar.extractfile(member)
        if source is not None:
            shutil.copyfileobj(source, sink, _CHUNK_SIZE)
    _set_mode_and_time(member, path)


def _set_mode_and_time(member: tarfile.TarInfo, path: str) -> None:
    """The data filter's mode (no set-uid/gid/sticky bit, no group or other write, executable only if the owner
    may execute it, owner read and write) and the member's modification time, on the regular file `path`."""
    mode = member.mode & 0o755
    if not mode & 0o100:
        mode &= ~0o111
    mode |= 0o600
    os.chmod(path, mode)
    try:
        os.utime(path, (member.mtime, member.mtime))
    except (OSError, OverflowError, ValueError):  # a time the file system cannot hold: keep "now", as tarfile does
        pass


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


# --- zip -------------------------------------------------------------------------------------------------------


def _extract_zip(archive: pathlib.Path, staging: pathlib.Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            names: set[str] = set()
            for info in zipped.infolist():
                name = _check_name(archive, info.filename)
                if name in names and not info.is_dir():
                    raise _unsafe(archive, info.filename, "duplicate name: an earlier member has it")
                names.add(name)
                mode = info.external_attr >> 16
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                    raise _unsafe(archive, info.filename, "device or FIFO file")
                if stat.S_ISLNK(mode):  # zipfile writes links as small text files; still refuse escapes
                    link = zipped.read(info).decode("utf-8", errors="replace")
                    _link_destination(archive, info.filename, link, posixpath.dirname(name), {})
            zipped.extractall(staging)
    except zipfile.BadZipFile as error:
        raise DownloadError(f"cannot read zip archive {str(archive)!r}: {error}") from error


# --- after writing ---------------------------------------------------------------------------------------------


def _check_links_inside(staging: pathlib.Path, archive: pathlib.Path) -> None:
    """After extraction, every symlink must still resolve inside `staging` (defence in depth)."""
    root = os.path.realpath(staging)
    for folder, dirs, files in os.walk(staging):
        for entry in dirs + files:
            path = os.path.join(folder, entry)
            if os.path.islink(path) and not _inside(root, os.path.realpath(path)):
                raise _unsafe(archive, os.path.relpath(path, staging), "link leaves the target folder")


def _replace_dir(staging: pathlib.Path, target: pathlib.Path) -> None:
    """Rename `staging` to `target`, moving an existing `target` aside first and deleting it afterwards."""
    if not (target.exists() or target.is_symlink()):
        os.replace(staging, target)
        return
    trash = pathlib.Path(tempfile.mkdtemp(dir=target.parent, prefix=temp_prefix(target.name), suffix=".old"))
    os.replace(target, trash / target.name)
    os.replace(staging, target)
    shutil.rmtree(trash, ignore_errors=True)
