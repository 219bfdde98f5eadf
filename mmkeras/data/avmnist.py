r"""AV-MNIST: MNIST digit images paired with spoken digits (FSDD), prepared once, cached, and loaded through the
course's schema so that every model of the course runs on it unchanged.

AV-MNIST (Vielzeuf et al. 2018, CentralNet; used by MFAS and MultiBench) pairs each MNIST image with a
recording of someone saying the same digit. Here:

- **Audio**: FSDD v1.0.9, 2,500 recordings at 8 kHz (5 speakers x 10 digits x 50), each scaled to a peak of 1
  and cut or zero-padded to 1 s (8,000 samples; 99.8 % of FSDD's recordings are shorter). The course's audio
  encoder turns the waveform into a log-mel spectrogram itself.
- **Split by speaker**: the test recordings come from `test_speakers` (one speaker, drawn from the seed, by
  default), never heard in training. Validation uses the other speakers' recordings 0-4, which FSDD's README
  names as its test set; training the rest (indices 5-49).
- **Pairing**: MNIST's training images (minus `val_images` of them for validation) go to the training pairs,
  MNIST's test images to the test pairs. Each image gets a recording of its own digit from its split's pool,
  cycling through a seeded permutation of that digit's recordings, so every recording is used about equally
  often (each of the 1,800 training recordings is heard ~31 times among 55,000 training pairs).
- **Degradation** (`load_avmnist(degrade=True)`, what makes fusion matter): the images keep only the principal
  components (fitted on the training images) that hold `image_energy` = 25 % of their variance, as MFAS and
  MultiBench keep 25 % of the energy; the audio gets noise at `audio_snr_db` (Gaussian, or clips from a folder
  of noise recordings such as ESC-50 when given).

How this differs from the published protocol. AV-MNIST's authors did not publish their generator; MultiBench
loads 55,000 / 5,000 / 10,000 pairs of 28x28 images and 112x112 spectrograms from files made with MFAS's
pipeline, and the one public generator (a fork of MFAS, `datasets/avmnist_gen.py` in slyviacassell/_MFAS) keeps
the PCA components that explain 25 % of the variance, fitting PCA on the train and test images separately,
sends FSDD recordings 40-49 to the test pairs and 0-39 to training, so the same speakers are heard in both,
and mixes ESC-50 noise in only when a noise power is set (0 by default). Here PCA is fitted on the training
images only, the test speaker is new (harder audio), and the audio stays a waveform.

The prepared pairs are cached as arrays in `<data_dir>/avmnist/avmnist-<key>.npz` (written to a temporary file
and renamed); degradation is applied when loading, from the seed, so it costs no disk.

Example:
>>> import pathlib, tempfile
>>> from mmkeras.data.avmnist_fixture import fixture_specs, write_fixture
>>> folder = write_fixture(pathlib.Path(tempfile.mkdtemp()), train_size=60, test_size=20, recordings_per_digit=6)
>>> cache = prepare_avmnist(folder / "data", base_url=folder.as_uri(), sources=fixture_specs(folder),
...                         val_images=10, progress=False)
>>> splits = load_avmnist(cache)
>>> {name: len(data) for name, data in splits.items()}
{'train': 50, 'val': 10, 'test': 20}
>>> splits["train"].schema.modality_names, splits["train"].schema.label_names
(('image', 'audio'), ('digit',))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import re
import tempfile
import wave

import numpy as np

from mmkeras._validation import check_int, check_number
from mmkeras.data.schema import DataSchema, LabelSpec, ModalitySpec, MultimodalData

AVMNIST_SAMPLE_RATE = 8000
AVMNIST_AUDIO_SAMPLES = 8000
"""1 s at 8 kHz: each recording is cut or zero-padded to this many samples."""
AVMNIST_SCHEMA = DataSchema(
    (ModalitySpec("image", (28, 28, 1)),
     ModalitySpec("audio", (AVMNIST_AUDIO_SAMPLES,), kind="audio", sample_rate=AVMNIST_SAMPLE_RATE)),
    (LabelSpec("digit", 10, tuple(str(d) for d in range(10))),),
)
"""Two modalities, `image` (28, 28, 1) in [0, 1] and `audio` (8000,) at 8 kHz, and one label, `digit`."""
FSDD_VALIDATION_INDICES = range(0, 5)
"""Recordings 0-4 of every speaker: FSDD's own test set, used here for validation."""
CACHE_VERSION = 1

_RECORDING = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


# ------------------------------------------------------------------------------------------------ readers


def read_mnist(path) -> dict:
    """Reads Keras's `mnist.npz`: `{"x_train": uint8 (n, 28, 28), "y_train": (n,), "x_test", "y_test"}`.

    Raises:
        ValueError: a key is missing, or an array has the wrong shape, dtype or labels.
    """
    path = pathlib.Path(path)
    with np.load(path) as archive:
        missing = sorted({"x_train", "y_train", "x_test", "y_test"} - set(archive.files))
        if missing:
            raise ValueError(f"{path} is not Keras's mnist.npz: keys {missing} are missing. Expected x_train, "
                             f"y_train, x_test, y_test. Received keys: {sorted(archive.files)}")
        arrays = {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype != np.uint8:
            raise ValueError(f"{path}: x_{split} must be uint8 (n, 28, 28). Received: {x.dtype} {x.shape}")
        if y.shape != (len(x),) or y.dtype.kind not in "iu" or (len(y) and (y.min() < 0 or y.max() > 9)):
            raise ValueError(f"{path}: y_{split} must hold {len(x)} digits 0-9. Received: {y.dtype} {y.shape}")
    return arrays


@dataclasses.dataclass(frozen=True)
class Recordings:
    """Spoken digits: `waveforms` float32 `(n, num_samples)` (peak 1, cut or zero-padded), `digits` `(n,)`,
    `speakers` str `(n,)`, `indices` `(n,)` (the recording's number), `lengths` `(n,)` (samples before
    padding, at most `num_samples`), and `sample_rate`."""

    waveforms: np.ndarray
    digits: np.ndarray
    speakers: np.ndarray
    indices: np.ndarray
    lengths: np.ndarray
    sample_rate: int


def read_recordings(folder, num_samples: int = AVMNIST_AUDIO_SAMPLES, sample_rate: int = AVMNIST_SAMPLE_RATE,
                    progress: bool = False) -> Recordings:
    """Reads FSDD's `recordings/` folder: every `{digit}_{speaker}_{index}.wav` (mono, 16-bit, `sample_rate`).

    Each recording is scaled to a peak of 1 (loudness says nothing about the digit) and cut or zero-padded to
    `num_samples`.

    Raises:
        ValueError: no recordings, a `.wav` named otherwise, or a file that is not mono 16-bit at `sample_rate`.
    """
    from tqdm.auto import tqdm

    folder = pathlib.Path(folder)
    num_samples, sample_rate = check_int("num_samples", num_samples), check_int("sample_rate", sample_rate)
    files = sorted(folder.glob("*.wav"))
    if not files:
        raise ValueError(f"No .wav recordings in {folder}. Expected FSDD's recordings/ folder with files named "
                         f"{{digit}}_{{speaker}}_{{index}}.wav, e.g. 7_jackson_32.wav")
    waveforms = np.zeros((len(files), num_samples), dtype=np.float32)
    digits, speakers, indices, lengths = [], [], [], []
    for i, path in enumerate(tqdm(files, desc="read FSDD", unit="file", disable=not progress)):
        match = _RECORDING.match(path.name)
        if match is None:
            raise ValueError(f"Recording {path.name!r} in {folder} is not named {{digit}}_{{speaker}}_{{index}}.wav "
                             f"(e.g. 7_jackson_32.wav)")
        with wave.open(str(path), "rb") as audio:
            form = (audio.getnchannels(), audio.getsampwidth(), audio.getframerate())
            if form != (1, 2, sample_rate):
                raise ValueError(f"{path.name}: expected mono 16-bit audio at {sample_rate} Hz. Received: "
                                 f"{form[0]} channel(s), {8 * form[1]}-bit, {form[2]} Hz")
            samples = np.frombuffer(audio.readframes(audio.getnframes()), dtype="<i2").astype(np.float32)
        peak = np.abs(samples).max() if samples.size else 0.0
        kept = samples[:num_samples] / max(peak, 1.0)
        waveforms[i, :len(kept)] = kept
        digits.append(int(match[1]))
        speakers.append(match[2])
        indices.append(int(match[3]))
        lengths.append(len(kept))
    return Recordings(waveforms, np.array(digits, np.int32), np.array(speakers), np.array(indices, np.int32),
                      np.array(lengths, np.int32), sample_rate)


# ------------------------------------------------------------------------------------------------ pairing


def choose_test_speakers(speakers, test_speakers=None, seed: int = 0) -> tuple[str, ...]:
    """The held-out speakers: `test_speakers` checked against the recordings, or one drawn from the seed."""
    names = sorted(set(np.asarray(speakers).tolist()))
    if len(names) < 2:
        raise ValueError(f"A speaker-disjoint split needs at least 2 speakers. Received: {names}")
    if test_speakers is None:
        return (names[int(np.random.default_rng(seed).integers(len(names)))],)
    chosen = (test_speakers,) if isinstance(test_speakers, str) else tuple(test_speakers)
    unknown = [s for s in chosen if s not in names]
    if unknown or not chosen or len(chosen) >= len(names):
        raise ValueError(f"`test_speakers` must be some (not all) of the recordings' speakers {names}. "
                         f"Received: {test_speakers!r}")
    return tuple(sorted(chosen))


def split_recordings(recordings: Recordings, test_speakers) -> dict:
    """Recording ids per split: `test` = the test speakers, `val` = the others' recordings 0-4, `train` the rest."""
    held_out = np.isin(recordings.speakers, list(test_speakers))
    early = np.isin(recordings.indices, list(FSDD_VALIDATION_INDICES))
    return {"train": np.flatnonzero(~held_out & ~early), "val": np.flatnonzero(~held_out & early),
            "test": np.flatnonzero(held_out)}


def pair_by_digit(image_digits, recording_ids, recording_digits, rng: np.random.Generator, split: str = "train"
                  ) -> np.ndarray:
    """For each image, a recording of the same digit from `recording_ids`: `(n_images,)` recording ids.

    The recordings of each digit are used in turn, in a seeded order, so each is used about equally often.

    Raises:
        ValueError: a digit has images but no recording in this split.
    """
    image_digits = np.asarray(image_digits)
    paired = np.empty(len(image_digits), dtype=np.int32)
    for digit in np.unique(image_digits):
        pool = recording_ids[np.asarray(recording_digits)[recording_ids] == digit]
        if not len(pool):
            raise ValueError(f"No recording of digit {digit} in the {split} split: cannot pair its images. "
                             f"Received {len(recording_ids)} recordings for that split")
        slots = np.flatnonzero(image_digits == digit)
        order = rng.permutation(pool)
        paired[slots] = order[np.arange(len(slots)) % len(order)]  # cycle through the digit's recordings
    return paired


def pair_avmnist(mnist: dict, recordings: Recordings, test_speakers=None, val_images: int | None = None,
                 seed: int = 0) -> dict:
    """Pairs MNIST's images with recordings of the same digit, speaker-disjoint (see the module docstring).

    Returns:
        `{"image_<split>": uint8 (n, 28, 28), "digit_<split>": (n,), "recording_<split>": (n,)}` for the
        splits train, val and test, plus `"test_speakers"`. `val_images=None` keeps 1/12 of MNIST's training
        images for validation (5,000 of 60,000: MNIST's usual 55,000 / 5,000 split).
    """
    val_images = len(mnist["x_train"]) // 12 if val_images is None else check_int("val_images", val_images)
    if val_images >= len(mnist["x_train"]):
        raise ValueError(f"`val_images` must be smaller than the {len(mnist['x_train'])} training images. "
                         f"Received: val_images={val_images}")
    rng = np.random.default_rng(seed)
    test_speakers = choose_test_speakers(recordings.speakers, test_speakers, seed)
    pools = split_recordings(recordings, test_speakers)
    order = rng.permutation(len(mnist["x_train"]))
    image_splits = {"train": (mnist["x_train"], order[val_images:]), "val": (mnist["x_train"], order[:val_images]),
                    "test": (mnist["x_test"], np.arange(len(mnist["x_test"])))}
    labels = {"train": mnist["y_train"], "val": mnist["y_train"], "test": mnist["y_test"]}
    result = {"test_speakers": np.array(test_speakers)}
    for split, (images, index) in image_splits.items():
        digits = np.asarray(labels[split])[index].astype(np.int32)
        result[f"image_{split}"] = images[index]
        result[f"digit_{split}"] = digits
        result[f"recording_{split}"] = pair_by_digit(digits, pools[split], recordings.digits, rng, split)
    return result


# ------------------------------------------------------------------------------------------- degradation


@dataclasses.dataclass(frozen=True)
class PCA:
    """Principal components of flattened images: `mean` `(d,)`, `components` `(k, d)` (rows, orthonormal),
    `explained` `(k,)`, the fraction of the variance each holds."""

    mean: np.ndarray
    components: np.ndarray
    explained: np.ndarray

    @property
    def kept_energy(self) -> float:
        return float(self.explained.sum())

    def reconstruct(self, images) -> np.ndarray:
        """`x_hat = mu + (x - mu) W^T W`, `W` the kept components: the images' projection onto them."""
        images = np.asarray(images, dtype=np.float32)
        flat = images.reshape(len(images), -1) - self.mean  # (n, d)
        return (self.mean + flat @ self.components.T @ self.components).reshape(images.shape).astype(np.float32)


def fit_pca(images, energy: float = 0.25) -> PCA:
    """The fewest leading principal components that hold at least `energy` of the images' variance.

    With the covariance's eigenvalues `lambda_1 >= lambda_2 >= ...`, `k` is the smallest number with
    `sum_{j<=k} lambda_j / sum_j lambda_j >= energy`.

    Example:
    >>> pca = fit_pca(np.random.default_rng(0).random((50, 4, 4)), energy=0.5)
    >>> bool(pca.kept_energy >= 0.5 > pca.kept_energy - pca.explained[-1]), pca.components.shape[1]
    (True, 16)
    """
    energy = check_number("energy", energy, 0.0, 1.0, low_inclusive=False)
    flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    mean = flat.mean(0)
    centred = flat - mean
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / max(len(flat) - 1, 1))  # ascending
    eigenvalues, eigenvectors = np.clip(eigenvalues[::-1], 0, None), eigenvectors[:, ::-1]
    ratio = eigenvalues / eigenvalues.sum()
    k = int(np.searchsorted(np.cumsum(ratio), energy - 1e-12) + 1)
    return PCA(mean.astype(np.float32), eigenvectors[:, :k].T.astype(np.float32), ratio[:k])


def add_noise(waveforms, snr_db: float, rng: np.random.Generator, lengths=None, noise_clips=None) -> np.ndarray:
    """Mixes noise into each waveform at a signal-to-noise ratio of `snr_db` decibels.

    `SNR = 10 log10(P_signal / P_noise)`, `P` the mean power over the recording (its first `lengths[i]`
    samples; the zero padding is not signal). The noise is Gaussian, or a random stretch of a random clip of
    `noise_clips` `(m, L)` (e.g. ESC-50, resampled to the same rate, `L >= num_samples`), scaled to that ratio.
    """
    snr_db = check_number("snr_db", snr_db)
    waveforms = np.asarray(waveforms, dtype=np.float32)
    n, num_samples = waveforms.shape
    lengths = np.full(n, num_samples) if lengths is None else np.maximum(np.asarray(lengths), 1)
    mask = np.arange(num_samples)[None, :] < lengths[:, None]
    power = (waveforms ** 2 * mask).sum(1) / lengths  # (n,)
    if noise_clips is None:
        noise = rng.standard_normal((n, num_samples)).astype(np.float32)
    else:
        noise_clips = np.asarray(noise_clips, dtype=np.float32)
        if noise_clips.ndim != 2 or noise_clips.shape[1] < num_samples:
            raise ValueError(f"`noise_clips` must be (m, L) with L >= {num_samples}. Received: {noise_clips.shape}")
        which = rng.integers(len(noise_clips), size=n)
        start = rng.integers(noise_clips.shape[1] - num_samples + 1, size=n)
        noise = noise_clips[which[:, None], start[:, None] + np.arange(num_samples)]  # (n, num_samples)
    noise_power = np.maximum((noise ** 2).mean(1), 1e-12)
    scale = np.sqrt(power / (noise_power * 10 ** (snr_db / 10)))  # P_noise' = P_signal / 10^(SNR/10)
    return (waveforms + scale[:, None] * noise).astype(np.float32)


def read_noise_folder(folder, sample_rate: int = AVMNIST_SAMPLE_RATE, num_samples: int = AVMNIST_AUDIO_SAMPLES
                      ) -> np.ndarray:
    """Every `.wav` under `folder` (e.g. ESC-50's `audio/`), mono, resampled to `sample_rate` with a
    polyphase filter (`scipy.signal.resample_poly`), as `(m, L)` clips at least `num_samples` long."""
    from math import gcd

    from scipy.signal import resample_poly

    clips = []
    for path in sorted(pathlib.Path(folder).rglob("*.wav")):
        with wave.open(str(path), "rb") as audio:
            channels, width, rate = audio.getnchannels(), audio.getsampwidth(), audio.getframerate()
            if width != 2:
                raise ValueError(f"{path.name}: expected 16-bit audio. Received: {8 * width}-bit")
            samples = np.frombuffer(audio.readframes(audio.getnframes()), "<i2").astype(np.float32) / 32768
        samples = samples.reshape(-1, channels).mean(1)
        common = gcd(rate, sample_rate)
        clips.append(resample_poly(samples, sample_rate // common, rate // common).astype(np.float32))
    clips = [c for c in clips if len(c) >= num_samples]
    if not clips:
        raise ValueError(f"No 16-bit .wav of at least {num_samples / sample_rate:.2f} s under {folder}")
    length = min(len(c) for c in clips)
    return np.stack([c[:length] for c in clips])


# ---------------------------------------------------------------------------------------- prepare & cache


def _cache_key(mnist_sha: str, fsdd_sha: str, **recipe) -> str:
    text = json.dumps({"version": CACHE_VERSION, "mnist": mnist_sha, "fsdd": fsdd_sha, **recipe}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _offline_help(spec, base_url, data_dir, error) -> str:
    from mmkeras.data.download import local_filename

    mirror = base_url or os.environ.get("MMKERAS_MIRROR")
    return (f"Could not get {spec.name!r} ({spec.filename}) from {mirror or spec.url}: {error}\n"
            f"Offline? Serve the files from a machine you can reach and point the mirror option at the folder "
            f"that holds {spec.filename!r}: `mmkeras prepare avmnist --mirror URL` (or MMKERAS_MIRROR=URL; "
            f"mirror tried: {mirror or 'none'}). Or copy it to {data_dir / local_filename(spec)} (checked by its "
            f"sha256). Or use the offline stand-in: `mmkeras prepare avmnist --fixture` "
            f"(prepare_avmnist(fallback='fixture')).")


def fixture_folder(data_dir=None, fixture_images=(1200, 300)) -> pathlib.Path:
    """`<data_dir>/avmnist-fixture-<train>x<test>/`, holding the offline stand-in (written on first use)."""
    from mmkeras.data.avmnist_fixture import write_fixture
    from mmkeras.data.download import resolve_data_dir

    train, test = (check_int("fixture_images", n) for n in fixture_images)
    folder = resolve_data_dir(data_dir) / f"avmnist-fixture-{train}x{test}"
    if not (folder / "mnist.npz").is_file() or not (folder / "v1.0.9.tar.gz").is_file():
        write_fixture(folder, train_size=train, test_size=test)
    return folder


def prepare_avmnist(data_dir=None, base_url: str | None = None, sources: dict | None = None, fallback=None,
                    fixture_images=(1200, 300), test_speakers=None, val_images: int | None = None, seed: int = 0,
                    progress: bool = True, force: bool = False, timeout: float = 30, retries: int = 3
                    ) -> pathlib.Path:
    """Downloads MNIST and FSDD (verified), pairs them (`pair_avmnist`) and caches the result; returns its path.

    Args:
        data_dir: str or path or None. Where downloads and the cache live. Defaults to `$MMKERAS_DATA_DIR`, else
            `~/.mmkeras/datasets`.
        base_url: str or None. A mirror serving the registry's file names (`mnist.npz`, `v1.0.9.tar.gz`).
            Defaults to `$MMKERAS_MIRROR`.
        sources: dict or None. `{"mnist": DatasetSpec, "fsdd": DatasetSpec}` to use instead of the registry's,
            e.g. `mmkeras.data.avmnist_fixture.fixture_specs(folder)`.
        fallback: None or `"fixture"`. What to do when a half cannot be downloaded: `None` raises; `"fixture"`
            prints why (always) and uses the offline stand-in for that half (`cache_info` says which half is real).
        fixture_images: (int, int). Training and test images of the stand-in MNIST. Defaults to `(1200, 300)`.
        test_speakers: str, list or None. Held-out speakers; `None` draws one from the seed.
        val_images: int or None. MNIST training images kept for validation; `None`: 1/12 of them (5,000).
        seed: int. Seeds the split and the pairing. Defaults to `0`.
        progress: bool. Progress bars and messages. Defaults to `True`.
        force: bool. Prepare again even if the cache exists. Defaults to `False`.
        timeout, retries: passed to `mmkeras.data.download.download`.

    Returns:
        The cache file, `<data_dir>/avmnist/avmnist-<key>.npz`; `load_avmnist(path)` reads it.

    Raises:
        DownloadError: a file could not be fetched (and `fallback=None`); the message says how to work offline
            (mirror, data dir, `--fixture`).
    """
    import sys

    from mmkeras.data.avmnist_fixture import fixture_specs
    from mmkeras.data.download import DownloadError, download, resolve_data_dir
    from mmkeras.data.registry import DatasetSpec, get_spec

    sources = dict(sources or {})
    if set(sources) - {"mnist", "fsdd"} or not all(isinstance(s, DatasetSpec) for s in sources.values()):
        raise ValueError(f"`sources` maps 'mnist' and/or 'fsdd' to a DatasetSpec. Received: {sources!r}")
    if fallback not in (None, "fixture"):
        raise ValueError(f"`fallback` must be None or 'fixture'. Received: fallback={fallback!r}")
    specs = {key: sources.get(key) or get_spec(key) for key in ("mnist", "fsdd")}
    root = resolve_data_dir(data_dir)
    paths = {}
    for key, spec in specs.items():
        try:
            paths[key] = download(spec, root, base_url=base_url, progress=progress, timeout=timeout, retries=retries)
        except DownloadError as error:
            message = _offline_help(spec, base_url, root, error)
            if fallback is None:
                raise DownloadError(message) from error
            print(f"{message}\n-> using the offline stand-in for {key!r}.", file=sys.stderr)  # never silently
            folder = fixture_folder(root, fixture_images)
            specs[key] = fixture_specs(folder)[key]
            paths[key] = download(specs[key], root, base_url=folder.resolve().as_uri(), progress=progress)
    recipe = {"test_speakers": None if test_speakers is None else sorted(np.atleast_1d(test_speakers).tolist()),
              "val_images": val_images, "seed": seed, "num_samples": AVMNIST_AUDIO_SAMPLES}
    cache = root / "avmnist" / f"avmnist-{_cache_key(specs['mnist'].sha256, specs['fsdd'].sha256, **recipe)}.npz"
    if cache.is_file() and not force:
        return cache
    recordings_dir = paths["fsdd"] / "free-spoken-digit-dataset-1.0.9" / "recordings"
    recordings = read_recordings(recordings_dir, progress=progress)
    pairs = pair_avmnist(read_mnist(paths["mnist"]), recordings, test_speakers, val_images, seed)
    arrays = pairs | {
        "waveforms": np.round(recordings.waveforms * 32767).astype(np.int16),  # (recordings, 8000), peak 1
        "recording_digit": recordings.digits, "recording_speaker": recordings.speakers,
        "recording_index": recordings.indices, "recording_length": recordings.lengths,
        "sources": np.array(json.dumps({k: {"name": s.name, "sha256": s.sha256, "real": "-fixture" not in s.name}
                                        for k, s in specs.items()})),
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{cache.name}.", suffix=".part", dir=cache.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temporary, cache)  # atomic: a reader never sees half a cache
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise
    return cache


def prepare_fixture(data_dir=None, fixture_images=(1200, 300), progress: bool = True, **kwargs) -> pathlib.Path:
    """`prepare_avmnist` on the offline stand-in (`mmkeras.data.avmnist_fixture`), written to
    `fixture_folder(data_dir)` and served from there as a `file://` mirror: the same chain, no network."""
    from mmkeras.data.avmnist_fixture import fixture_specs

    folder = fixture_folder(data_dir, fixture_images)
    return prepare_avmnist(data_dir, base_url=folder.resolve().as_uri(), sources=fixture_specs(folder),
                           progress=progress, **kwargs)


# ------------------------------------------------------------------------------------------------ loading


def cache_info(path) -> dict:
    """What a cache holds: `{"sources": {...}, "test_speakers": [...], "sizes": {split: n}, "recordings": n}`."""
    with np.load(path) as cache:
        return {"sources": json.loads(str(cache["sources"])), "test_speakers": cache["test_speakers"].tolist(),
                "sizes": {s: int(len(cache[f"digit_{s}"])) for s in ("train", "val", "test")},
                "recordings": int(len(cache["waveforms"]))}


def load_avmnist(path, train_size: int | None = None, val_size: int | None = None, test_size: int | None = None,
                 degrade: bool = False, image_energy: float = 0.25, audio_snr_db: float = 0.0, noise_clips=None,
                 seed: int = 0) -> dict:
    """The cached AV-MNIST pairs as `{"train", "val", "test"}` `MultimodalData` with `AVMNIST_SCHEMA`.

    Args:
        path: the cache from `prepare_avmnist`.
        train_size, val_size, test_size: int or None. The first that many pairs of each split (they are in
            random order); `None` takes all.
        degrade: bool. Keep `image_energy` of the images' PCA energy (fitted on the training images) and add
            noise to the audio at `audio_snr_db`. Defaults to `False`.
        image_energy: float in (0, 1]. Defaults to `0.25` (MFAS / MultiBench).
        audio_snr_db: float. Signal-to-noise ratio of the added noise, dB. Defaults to `0.0` (equal power).
        noise_clips: array `(m, L)` or None. Noise recordings (`read_noise_folder`) instead of Gaussian noise.
        seed: int. Seeds the noise. Defaults to `0`.

    Returns:
        A dict of `MultimodalData`; each `meta` holds the paired recording's `speaker`, `recording` (its id in
        the cache) and `recording_index` (its number in FSDD). `fit_pca` tells how many components are kept.
    """
    sizes = {"train": train_size, "val": val_size, "test": test_size}
    with np.load(path) as cache:
        arrays = {key: cache[key] for key in cache.files}
    waveforms = arrays["waveforms"].astype(np.float32) / 32767
    images = {s: arrays[f"image_{s}"].astype(np.float32) / 255.0 for s in sizes}
    if degrade:
        pca = fit_pca(images["train"], image_energy)  # fitted on the training images only
        images = {s: pca.reconstruct(x) for s, x in images.items()}
    rng = np.random.default_rng(seed)
    splits = {}
    for split, size in sizes.items():
        n = len(arrays[f"digit_{split}"]) if size is None else min(check_int(f"{split}_size", size),
                                                                   len(arrays[f"digit_{split}"]))
        ids = arrays[f"recording_{split}"][:n]
        audio = waveforms[ids]
        if degrade:
            audio = add_noise(audio, audio_snr_db, rng, arrays["recording_length"][ids], noise_clips)
        splits[split] = MultimodalData(
            {"image": images[split][:n, :, :, None], "audio": audio},
            {"digit": arrays[f"digit_{split}"][:n]},
            {"speaker": arrays["recording_speaker"][ids], "recording": ids,
             "recording_index": arrays["recording_index"][ids]},
            AVMNIST_SCHEMA,
        )
    return splits
