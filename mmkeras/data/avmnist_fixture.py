"""An offline stand-in for AV-MNIST's two downloads, laid out exactly like the real files.

The machines this course is tested on cannot download MNIST or the Free Spoken Digit Dataset (FSDD), and the
test suite must not depend on files outside the repository. `write_fixture(folder)` writes, from a seed:

- `mnist.npz` with the keys of Keras's copy: `x_train` uint8 `(n, 28, 28)`, `y_train` uint8 `(n,)`, `x_test`,
  `y_test`. The "handwriting" is a digit glyph of one of ten fonts bundled with matplotlib, with a random
  stroke width, rotation and shear, fitted into a 20x20 box and centred by its centre of mass in the 28x28
  image, as MNIST's digits were: easy for a CNN, like MNIST, and hard once PCA has removed 75 % of its energy;
- `v1.0.9.tar.gz`, the name FSDD's release archive has on its mirror, holding
  `free-spoken-digit-dataset-1.0.9/recordings/{digit}_{speaker}_{index}.wav`: 8 kHz mono 16-bit WAV files
  for FSDD v1.0.9's five speakers. Each "spoken digit" is two vowel-like segments whose two formant
  frequencies depend on the digit (a speaker shifts them by a few percent and has their own pitch), with a
  random length, an attack-decay envelope and a little noise. It is not speech; it is a signal that an audio
  encoder must learn from its spectrogram, with speakers that differ.

`fixture_specs(folder)` returns registry entries (`DatasetSpec`) for the two files, with their real sha256:
`mmkeras.data.avmnist.prepare_avmnist(sources=fixture_specs(folder), base_url=folder.as_uri())` then runs
exactly the chain it runs on the real downloads (download, verify, extract, read, pair, cache).

Example:
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> sorted(p.name for p in write_fixture(folder, train_size=20, test_size=10, recordings_per_digit=1).iterdir())
['mnist.npz', 'v1.0.9.tar.gz']
"""

from __future__ import annotations

import dataclasses
import io
import os
import pathlib
import tarfile
import tempfile
import wave

import numpy as np

from mmkeras._validation import check_int
from mmkeras.data.registry import get_spec

FSDD_SPEAKERS = ("george", "jackson", "nicolas", "theo", "yweweler")
"""The five speakers of FSDD v1.0.9 (500 recordings each: 10 digits x 50)."""
FSDD_ROOT = "free-spoken-digit-dataset-1.0.9"
"""The top folder of FSDD's v1.0.9 archive; the recordings are in `<FSDD_ROOT>/recordings/`."""
FIXTURE_SAMPLE_RATE = 8000

# Two (F1, F2) formant pairs in Hz per digit, one per "syllable": distinct per digit, overlapping a little.
_FORMANTS = np.array([
    [(300, 2300), (600, 1000)], [(700, 1100), (400, 1900)], [(350, 800), (650, 1700)], [(500, 1500), (280, 2250)],
    [(450, 900), (750, 1250)], [(650, 1800), (350, 1000)], [(300, 2000), (550, 2400)], [(550, 1100), (300, 1400)],
    [(750, 1600), (450, 2100)], [(400, 1200), (700, 2000)],
], dtype=np.float64)


_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf",
          "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf", "STIXGeneral.ttf", "STIXGeneralItalic.ttf", "cmr10.ttf",
          "cmss10.ttf")


def _glyphs(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """28x28 uint8 digit images made the way MNIST's were: a glyph (one of ten fonts bundled with matplotlib,
    random stroke, rotation and shear) scaled to fit a 20x20 box, then centred by its centre of mass."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    folder = pathlib.Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = [ImageFont.truetype(str(folder / name), 60) for name in _FONTS]
    images = np.zeros((len(labels), 28, 28), dtype=np.uint8)
    for i, digit in enumerate(labels):
        canvas = Image.new("L", (96, 96), 0)
        draw = ImageDraw.Draw(canvas)
        draw.text((48, 48), str(int(digit)), fill=255, font=fonts[int(rng.integers(len(fonts)))], anchor="mm",
                  stroke_width=int(rng.integers(0, 4)), stroke_fill=255)
        shear = float(rng.uniform(-0.3, 0.3))
        canvas = canvas.transform((96, 96), Image.AFFINE, (1, shear, -48 * shear, 0, 1, 0), Image.BILINEAR)
        canvas = canvas.rotate(float(rng.uniform(-12, 12)), resample=Image.BILINEAR)
        glyph = canvas.crop(canvas.getbbox())
        scale = 20.0 / max(glyph.size)
        glyph = glyph.resize((max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))),
                             Image.LANCZOS).filter(ImageFilter.GaussianBlur(0.4))
        pixels = np.asarray(glyph, dtype=np.float64)
        rows, cols = np.indices(pixels.shape)
        cy, cx = (rows * pixels).sum() / pixels.sum(), (cols * pixels).sum() / pixels.sum()
        top, left = int(round(14 - cy)), int(round(14 - cx))  # centre of mass at (14, 14), like MNIST
        top, left = min(max(top, 0), 28 - pixels.shape[0]), min(max(left, 0), 28 - pixels.shape[1])
        images[i, top:top + pixels.shape[0], left:left + pixels.shape[1]] = np.clip(pixels, 0, 255)
    return images


def spoken_digit(digit: int, speaker: int, rng: np.random.Generator, sample_rate: int = FIXTURE_SAMPLE_RATE
                 ) -> np.ndarray:
    """One stand-in recording, int16: two vowel-like segments with the digit's formants, the speaker's pitch.

    Each segment is a sum of the pitch's harmonics `k f0` weighted by two resonances at the formants
    `F1, F2` (a source-filter vowel), under an attack-decay envelope.
    """
    f0 = 95.0 + 30.0 * speaker + rng.uniform(-6, 6)  # the speaker's pitch, Hz
    shift = 1.0 + 0.04 * (speaker - 2) + rng.uniform(-0.03, 0.03)  # the speaker's vocal tract, +-8 %
    pieces = []
    for f1, f2 in _FORMANTS[digit]:
        n = int(sample_rate * rng.uniform(0.15, 0.3))
        t = np.arange(n) / sample_rate
        harmonics = np.arange(1, int(3400 / f0) + 1) * f0  # (k,) Hz, below 3.4 kHz
        gain = sum(1.0 / (1.0 + ((harmonics - f * shift) / 120.0) ** 2) for f in (f1, f2))  # (k,)
        phases = rng.uniform(0, 2 * np.pi, size=len(harmonics))
        segment = (gain[:, None] * np.sin(2 * np.pi * harmonics[:, None] * t + phases[:, None])).sum(0)
        envelope = np.minimum(1.0, t / 0.02) * np.exp(-t / rng.uniform(0.12, 0.25))
        pieces.append(segment * envelope)
    signal = np.concatenate(pieces)
    signal = signal / np.abs(signal).max() + rng.normal(0.0, 0.01, size=signal.shape)
    return (np.clip(signal, -1, 1) * 0.8 * 32767).astype(np.int16)


def _wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


def _atomic_write(path: pathlib.Path, write) -> None:
    """`write(file)` into a temporary file next to `path`, renamed only when complete."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise


def write_fixture(folder, train_size: int = 1200, test_size: int = 300, recordings_per_digit: int = 10,
                  seed: int = 0) -> pathlib.Path:
    """Writes `mnist.npz` and `v1.0.9.tar.gz` (the stand-ins described above) into `folder`.

    Args:
        folder: str or path. Created if missing.
        train_size, test_size: int. Images in `x_train` and `x_test` (MNIST has 60,000 and 10,000).
            Defaults to `1200` and `300`.
        recordings_per_digit: int. Recordings per digit and speaker (FSDD has 50). Defaults to `10`.
        seed: int. The same seed writes the same bytes. Defaults to `0`.

    Returns:
        The folder.
    """
    train_size, test_size = check_int("train_size", train_size), check_int("test_size", test_size)
    recordings_per_digit = check_int("recordings_per_digit", recordings_per_digit)
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y_train = (np.arange(train_size) % 10)[rng.permutation(train_size)].astype(np.uint8)
    y_test = (np.arange(test_size) % 10)[rng.permutation(test_size)].astype(np.uint8)
    arrays = {"x_train": _glyphs(y_train, rng), "y_train": y_train, "x_test": _glyphs(y_test, rng), "y_test": y_test}
    _atomic_write(folder / "mnist.npz", lambda f: np.savez_compressed(f, **arrays))

    def write_tar(file):
        with tarfile.open(fileobj=file, mode="w:gz") as archive:
            for name, data in _recordings(recordings_per_digit, rng):
                info = tarfile.TarInfo(f"{FSDD_ROOT}/recordings/{name}")
                info.size, info.mtime, info.mode = len(data), 1_600_000_000, 0o644
                archive.addfile(info, io.BytesIO(data))

    _atomic_write(folder / get_spec("fsdd").filename, write_tar)
    return folder


def _recordings(recordings_per_digit: int, rng: np.random.Generator):
    for speaker_id, speaker in enumerate(FSDD_SPEAKERS):
        for digit in range(10):
            for index in range(recordings_per_digit):
                yield (f"{digit}_{speaker}_{index}.wav",
                       _wav_bytes(spoken_digit(digit, speaker_id, rng), FIXTURE_SAMPLE_RATE))


def fixture_specs(folder) -> dict:
    """Registry entries for the fixture's two files (`{"mnist": spec, "fsdd": spec}`), with their sha256.

    They are the real entries with another name (`mnist-fixture-<hash>`, `fsdd-fixture-<hash>`: the fixture never
    lands where a real download would, and stand-ins of different sizes never share a file) and the fixture's
    checksums and sizes.
    """
    from mmkeras.data.download import file_sha256

    folder = pathlib.Path(folder)
    specs = {}
    for key in ("mnist", "fsdd"):
        real = get_spec(key)
        path = folder / real.filename
        if not path.is_file():
            raise FileNotFoundError(f"No fixture file {path}: write it with write_fixture({str(folder)!r}).")
        digest = file_sha256(path)
        specs[key] = dataclasses.replace(  # the name holds the hash: stand-ins of different sizes never collide
            real, name=f"{key}-fixture-{digest[:8]}", sha256=digest, size_bytes=path.stat().st_size,
            description=f"The offline stand-in for {key!r} written by mmkeras.data.avmnist_fixture (not real data).")
    return specs
