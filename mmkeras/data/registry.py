"""The registry of real datasets the course can download.

Each entry is a `DatasetSpec`: where the file lives, the sha256 it must have, its size, its licence and how to
cite it. `mmkeras.data.download.download` reads this registry; `data_scripts/download.py` is its command line.

Where each checksum comes from (never invented, never copied from an unverifiable place):

- `mnist`: the `file_hash` that Keras itself passes to `keras.utils.get_file` in
  `keras/src/datasets/mnist.py`; the size is the byte count Keras prints when it downloads the file.
- `fsdd`: the URL, size and sha256 recorded by TensorFlow Datasets in
  `tensorflow_datasets/audio/spoken_digit/checksums.tsv` for the same release archive.
- `esc50`: no trustworthy published sha256 is known, so it is `None`; `download` refuses it unless the caller
  passes `allow_unverified=True`, which prints the hash to record here.

Example:

>>> from mmkeras.data.registry import get_spec
>>> spec = get_spec("mnist")
>>> spec.archive_format is None, spec.size_bytes
(True, 11490434)
"""

from __future__ import annotations

import dataclasses

ARCHIVE_FORMATS = (None, "zip", "tar", "tar.gz")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset file lives and how to check it.

    Args:
        name: str. Short identifier, used as the folder name under the data directory.
        url: str. Public URL of the file. A mirror replaces everything before the last `/`.
        sha256: str or None. Hex sha256 of the file. `None` means "not known yet": downloading then needs
            `allow_unverified=True`.
        size_bytes: int or None. Size of the file in bytes, if known (used for the progress bar and docs).
        license: str. The licence the data is distributed under.
        citation: str. How to cite the dataset.
        archive_format: str or None. `"zip"`, `"tar"`, `"tar.gz"`, or `None` for a plain file (no extraction).
        description: str. One or two sentences on what the data is and how the course uses it.

    Example:

    >>> spec = DatasetSpec(
    ...     name="toy", url="https://example.org/toy.zip", sha256="0" * 64, size_bytes=10,
    ...     license="CC0-1.0", citation="-", archive_format="zip", description="A toy archive.",
    ... )
    >>> spec.filename
    'toy.zip'
    """

    name: str
    url: str
    sha256: str | None
    size_bytes: int | None
    license: str
    citation: str
    archive_format: str | None
    description: str

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or "\\" in self.name or self.name.startswith("."):
            raise ValueError(f"`name` must be a plain folder name. Received: name={self.name!r}")
        if self.archive_format not in ARCHIVE_FORMATS:
            raise ValueError(
                f"`archive_format` must be one of {ARCHIVE_FORMATS}. "
                f"Received: archive_format={self.archive_format!r}"
            )
        if self.sha256 is not None and (
            len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256)
        ):
            raise ValueError(
                f"`sha256` must be 64 lowercase hex characters or None. Received: sha256={self.sha256!r}"
            )

    @property
    def filename(self) -> str:
        """The file name at the end of `url` (what a mirror must serve)."""
        return self.url.rstrip("/").rsplit("/", 1)[-1]


MNIST = DatasetSpec(
    name="mnist",
    url="https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
    # From keras/src/datasets/mnist.py (`file_hash` passed to `keras.utils.get_file`).
    sha256="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    size_bytes=11_490_434,
    license="CC BY-SA 3.0",
    citation=(
        "Y. LeCun, L. Bottou, Y. Bengio and P. Haffner. Gradient-based learning applied to document "
        "recognition. Proceedings of the IEEE, 86(11):2278-2324, 1998."
    ),
    archive_format=None,
    description=(
        "70,000 28x28 grayscale handwritten digits (60,000 train, 10,000 test) as one NumPy .npz file, the "
        "Keras copy. The image half of AV-MNIST (digit images paired with spoken digits from `fsdd`)."
    ),
)

FSDD = DatasetSpec(
    name="fsdd",
    url="https://github.com/Jakobovski/free-spoken-digit-dataset/archive/v1.0.9.tar.gz",
    # From tensorflow_datasets/audio/spoken_digit/checksums.tsv (same URL, same release).
    sha256="8bc44cde129d505cbbb6b365c09f80c663f2aa77578afc634e6141a2f87100c0",
    size_bytes=11_975_353,
    license="CC BY-SA 4.0",
    citation=(
        "Z. Jackson, C. Souza, J. Flaks, Y. Pan, H. Nicolas and A. Thite. Free Spoken Digit Dataset (FSDD), "
        "release v1.0.9. https://github.com/Jakobovski/free-spoken-digit-dataset"
    ),
    archive_format="tar.gz",
    description=(
        "Free Spoken Digit Dataset: English recordings of the digits 0-9 (8 kHz mono WAV, 50 per digit and "
        "speaker), named `{digit}_{speaker}_{index}.wav`. 'MNIST for audio': the audio half of AV-MNIST."
    ),
)

ESC50 = DatasetSpec(
    name="esc50",
    url="https://github.com/karolpiczak/ESC-50/archive/master.zip",
    # sha256 to be confirmed by running data_scripts/download.py esc50 --allow-unverified with internet
    # (or data_scripts/download.py --print-hash FILE on a downloaded copy). Until then, download() refuses
    # this entry unless allow_unverified=True. A branch archive can change when the branch does.
    sha256=None,
    size_bytes=None,
    license="CC BY-NC 3.0",
    citation=(
        "K. J. Piczak. ESC: Dataset for Environmental Sound Classification. Proceedings of the 23rd ACM "
        "International Conference on Multimedia, pp. 1015-1018, 2015. doi:10.1145/2733373.2806390"
    ),
    archive_format="zip",
    description=(
        "2,000 five-second environmental sound clips (44.1 kHz WAV) in 50 classes, with 5 predefined folds "
        "(about 600 MiB). Real-world audio for the audio encoder and audio-visual notebooks."
    ),
)

REGISTRY: dict[str, DatasetSpec] = {spec.name: spec for spec in (MNIST, FSDD, ESC50)}


def get_spec(name: str) -> DatasetSpec:
    """Return the registered `DatasetSpec` called `name`.

    Args:
        name: str. A key of `REGISTRY`, e.g. `"fsdd"`.

    Returns:
        The `DatasetSpec`.

    Raises:
        ValueError: if `name` is not registered; the message lists the known names.

    Example:

    >>> get_spec("fsdd").archive_format
    'tar.gz'
    """
    if name not in REGISTRY:
        raise ValueError(f"Unknown dataset. Expected one of {sorted(REGISTRY)}. Received: name={name!r}")
    return REGISTRY[name]
