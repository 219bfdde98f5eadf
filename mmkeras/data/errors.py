"""The errors of downloading (`download.py`) and extracting (`extract.py`) a dataset.

They live in their own module so that both can raise them without importing each other; import them from
`mmkeras.data.download` as before.

Example:

>>> from mmkeras.data.download import DownloadError, UnsafeArchiveError
>>> issubclass(UnsafeArchiveError, DownloadError)
True
"""

from __future__ import annotations


class DownloadError(RuntimeError):
    """A dataset could not be downloaded, verified or extracted."""


class ChecksumError(DownloadError):
    """The sha256 of a file is not the one in the registry (or the registry has none)."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the target folder, or is a link or a device file."""
