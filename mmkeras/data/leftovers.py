"""Temporary files of downloads and extractions: named after their owner, swept once stale.

A download streams into `.<name>.<host>-<pid>.<random>.part`, an extraction fills
`.<name>.<host>-<pid>.<random>.extracting`, and a replaced extraction waits in
`.<name>.<host>-<pid>.<random>.old` until it is deleted, all next to their final place. They are removed on any
error the process sees, but a process that is killed (SIGKILL, power cut) leaves them behind. Before the next
download or extraction of the same name, `sweep_stale` removes those whose owner is gone: a process of this
machine that no longer runs, or any owner once the entry has not changed for `STALE_AFTER_SECONDS` (which also
covers the `.<name>.<random>.part` files of mmkeras versions that did not record their owner, and owners on
another machine sharing the data directory). An active download keeps writing to its file, so it does not
look stale.

Example:

>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / ".toy.oldrun42.part").write_bytes(b"half a file")  # no owner recorded ...
>>> old = 2 * STALE_AFTER_SECONDS
>>> import os, time; os.utime(folder / ".toy.oldrun42.part", (time.time() - old, time.time() - old))  # ... and old
>>> [path.name for path in sweep_stale(folder, "toy", ("part",))]
['.toy.oldrun42.part']
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
import shutil
import socket
import time

STALE_AFTER_SECONDS = 24 * 3600
_HOST = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def owner_token(pid: int | None = None) -> str:
    """`<host>-<pid>`: which process of which machine owns a temporary name (this process by default)."""
    return f"{_HOST}-{os.getpid() if pid is None else pid}"


def temp_prefix(stem: str) -> str:
    """`.<stem>.<host>-<pid>.`: the start of a temporary name for `tempfile.mkstemp` / `mkdtemp`."""
    return f".{stem}.{owner_token()}."


def sweep_stale(folder: str | os.PathLike[str], stem: str, suffixes: tuple[str, ...],
                max_age: float = STALE_AFTER_SECONDS) -> list[pathlib.Path]:
    """Remove the stale temporary entries `.<stem>.*.<suffix>` of `folder`; return what was removed.

    An entry is stale when its owner is a process of this machine that no longer runs, or when it has not been
    modified for `max_age` seconds. Entries of live owners, of other names, and errors while removing (another
    process sweeping at the same time) are left alone: sweeping never makes a download fail.

    Args:
        folder: str or path. The data directory (or the parent of an extraction target).
        stem: str. The dataset or target name.
        suffixes: tuple of str. Kinds of entries, e.g. `("part",)` or `("extracting", "old")`.
        max_age: float. Seconds without change after which any entry is stale. Defaults to one day.

    Returns:
        The removed paths.
    """
    pattern = re.compile(
        rf"\.{re.escape(stem)}\.(?:([0-9a-f]{{8}})-([0-9]+)\.)?[^.]+\.(?:{'|'.join(map(re.escape, suffixes))})"
    )
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    removed = []
    now = time.time()
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if age <= max_age and _owner_alive(match[1], match[2]) is not False:
            continue
        path = pathlib.Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                path.unlink()
            except OSError:
                continue
        if not (path.exists() or path.is_symlink()):
            removed.append(path)
    return removed


def _owner_alive(host: str | None, pid: str | None) -> bool | None:
    """True or False for a process of this machine; None when that cannot be known (no owner, other machine)."""
    if host != _HOST or pid is None or os.name == "nt":  # on Windows os.kill(pid, 0) would end the process
        return None
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except (OSError, OverflowError):
        return None
    return True
