"""AV-MNIST preparation on fixture files laid out exactly like the real archives, served over 127.0.0.1.

The fixture (`mmkeras.data.avmnist_fixture`) writes `mnist.npz` with Keras's keys and FSDD's
`free-spoken-digit-dataset-1.0.9/recordings/{digit}_{speaker}_{index}.wav` in a tar.gz; a real HTTP server in
this process serves them, and `prepare_avmnist` runs the whole chain (download, verify, extract, read, pair,
cache) on them.
"""

from __future__ import annotations

import functools
import http.server
import io
import tarfile
import threading
import wave

import numpy as np
import pytest

from mmkeras.data.avmnist import (
    AVMNIST_SCHEMA,
    add_noise,
    cache_info,
    choose_test_speakers,
    fit_pca,
    load_avmnist,
    pair_avmnist,
    prepare_avmnist,
    read_mnist,
    read_recordings,
)
from mmkeras.data.avmnist_fixture import FSDD_SPEAKERS, fixture_specs, write_fixture
from mmkeras.data.download import DownloadError


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (http.server API)
        self.server.requests.append(self.path)


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
    return write_fixture(tmp_path_factory.mktemp("mirror"), train_size=240, test_size=60, recordings_per_digit=6)


@pytest.fixture(scope="module")
def mirror(fixture_dir):
    """A static file server on 127.0.0.1 serving the fixture folder (a mirror, as a user would run one)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(fixture_dir)))
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def recordings_dir(fixture_dir, tmp_path_factory):
    target = tmp_path_factory.mktemp("fsdd")
    with tarfile.open(fixture_dir / "v1.0.9.tar.gz") as archive:
        archive.extractall(target, filter="data")
    return target / "free-spoken-digit-dataset-1.0.9" / "recordings"


@pytest.fixture(scope="module")
def prepared(mirror, fixture_dir, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    base = f"http://127.0.0.1:{mirror.server_address[1]}/"
    cache = prepare_avmnist(data_dir, base_url=base, sources=fixture_specs(fixture_dir), val_images=40,
                            progress=False)
    return cache, data_dir, base


def test_fixture_is_laid_out_like_the_real_archives(fixture_dir):
    mnist = np.load(fixture_dir / "mnist.npz")
    assert sorted(mnist.files) == ["x_test", "x_train", "y_test", "y_train"]
    assert mnist["x_train"].dtype == np.uint8 and mnist["x_train"].shape == (240, 28, 28)
    assert set(mnist["y_train"].tolist()) == set(range(10))
    with tarfile.open(fixture_dir / "v1.0.9.tar.gz") as archive:
        names = archive.getnames()
    assert len(names) == 10 * len(FSDD_SPEAKERS) * 6
    assert "free-spoken-digit-dataset-1.0.9/recordings/7_jackson_3.wav" in names


def test_recordings_are_read_peak_normalised_and_padded(recordings_dir):
    recordings = read_recordings(recordings_dir)
    assert recordings.waveforms.shape == (300, 8000) and recordings.sample_rate == 8000
    assert sorted(set(recordings.speakers.tolist())) == sorted(FSDD_SPEAKERS)
    assert np.allclose(np.abs(recordings.waveforms).max(1), 1.0, atol=1e-4)
    assert (recordings.lengths < 8000).all()  # the stand-ins are shorter than 1 s: the rest is zero padding
    i = 0
    assert not recordings.waveforms[i, recordings.lengths[i]:].any()


def test_bad_recordings_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="No .wav recordings"):
        read_recordings(tmp_path)
    (tmp_path / "seven.wav").write_bytes(b"")
    with pytest.raises(ValueError, match=r"'seven.wav'.*\{digit\}_\{speaker\}_\{index\}"):
        read_recordings(tmp_path)
    (tmp_path / "seven.wav").unlink()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes(np.zeros(100, "<i2").tobytes())
    (tmp_path / "7_ann_0.wav").write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="8000 Hz. Received: 1 channel.*16000 Hz"):
        read_recordings(tmp_path)


def test_bad_mnist_file_names_the_missing_keys(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match=r"\['x_test', 'y_test', 'y_train'\] are missing"):
        read_mnist(tmp_path / "mnist.npz")


def test_pairing_is_label_consistent_deterministic_and_speaker_disjoint(fixture_dir, recordings_dir):
    mnist, recordings = read_mnist(fixture_dir / "mnist.npz"), read_recordings(recordings_dir)
    pairs = pair_avmnist(mnist, recordings, val_images=40, seed=3)
    again = pair_avmnist(mnist, recordings, val_images=40, seed=3)
    other = pair_avmnist(mnist, recordings, val_images=40, seed=4)
    test_speakers = set(pairs["test_speakers"].tolist())
    assert len(test_speakers) == 1
    speakers = {s: set(recordings.speakers[pairs[f"recording_{s}"]].tolist()) for s in ("train", "val", "test")}
    assert speakers["test"] == test_speakers and not (speakers["train"] | speakers["val"]) & test_speakers
    assert set(recordings.indices[pairs["recording_val"]].tolist()) <= set(range(5))  # FSDD's own test indices
    assert not set(pairs["recording_train"]) & set(pairs["recording_val"])
    for split in ("train", "val", "test"):
        assert (recordings.digits[pairs[f"recording_{split}"]] == pairs[f"digit_{split}"]).all()
        assert np.array_equal(pairs[f"recording_{split}"], again[f"recording_{split}"])
    assert not np.array_equal(pairs["recording_train"], other["recording_train"])
    assert len(pairs["digit_train"]) == 200 and len(pairs["digit_val"]) == 40 and len(pairs["digit_test"]) == 60
    # every recording of the pool is used about equally often (cycled, not drawn with replacement)
    counts = np.bincount(pairs["recording_train"], minlength=len(recordings.digits))[
        np.unique(pairs["recording_train"])]
    assert counts.max() - counts.min() <= 2


def test_test_speakers_are_checked():
    with pytest.raises(ValueError, match=r"some \(not all\).*Received: 'alice'"):
        choose_test_speakers(np.array(["bob", "carol"]), "alice")
    assert choose_test_speakers(np.array(["bob", "carol", "bob"]), ["carol"]) == ("carol",)


def test_pca_keeps_the_requested_fraction_of_energy(fixture_dir):
    images = read_mnist(fixture_dir / "mnist.npz")["x_train"] / 255.0
    for energy in (0.25, 0.5, 0.9):
        pca = fit_pca(images, energy)
        assert pca.kept_energy >= energy > pca.kept_energy - pca.explained[-1]  # the fewest components
        # the fraction kept, measured on the reconstruction itself
        centred = images.reshape(len(images), -1) - pca.mean
        rebuilt = pca.reconstruct(images).reshape(len(images), -1) - pca.mean
        assert np.isclose((rebuilt ** 2).sum() / (centred ** 2).sum(), pca.kept_energy, rtol=1e-3)
    with pytest.raises(ValueError, match="energy"):
        fit_pca(images, 0.0)


def test_noise_is_mixed_at_the_requested_snr():
    rng = np.random.default_rng(0)
    clean = np.zeros((64, 8000), np.float32)
    clean[:, :4000] = np.sin(np.arange(4000) / 5.0)
    lengths = np.full(64, 4000)
    for snr in (-5.0, 0.0, 10.0):
        noisy = add_noise(clean, snr, np.random.default_rng(1), lengths)
        noise = noisy - clean
        measured = 10 * np.log10((clean[:, :4000] ** 2).mean() / (noise ** 2).mean())
        assert abs(measured - snr) < 0.2
    clips = rng.standard_normal((3, 9000)).astype(np.float32)
    noisy = add_noise(clean, 0.0, rng, lengths, noise_clips=clips)
    assert noisy.shape == clean.shape
    with pytest.raises(ValueError, match="noise_clips"):
        add_noise(clean, 0.0, rng, lengths, noise_clips=clips[:, :100])


def test_prepare_downloads_verifies_pairs_and_caches(prepared, mirror, fixture_dir):
    cache, data_dir, base = prepared
    info = cache_info(cache)
    assert info["sizes"] == {"train": 200, "val": 40, "test": 60} and info["recordings"] == 300
    assert {k: v["real"] for k, v in info["sources"].items()} == {"mnist": False, "fsdd": False}
    assert not list((data_dir / "avmnist").glob(".*.part"))  # nothing half-written
    served = len(mirror.requests)
    again = prepare_avmnist(data_dir, base_url=base, sources=fixture_specs(fixture_dir), val_images=40,
                            progress=False)
    assert again == cache and len(mirror.requests) == served  # verified copies reused, nothing downloaded


def test_loaded_splits_follow_the_schema_and_degrade_deterministically(prepared):
    cache = prepared[0]
    clean = load_avmnist(cache)
    assert clean["train"].schema == AVMNIST_SCHEMA
    assert clean["train"].features["image"].shape == (200, 28, 28, 1)
    assert clean["test"].features["audio"].shape == (60, 8000)
    assert set(clean["test"].meta["speaker"].tolist()) == set(cache_info(cache)["test_speakers"])
    a, b = load_avmnist(cache, degrade=True, seed=5), load_avmnist(cache, degrade=True, seed=5)
    assert np.array_equal(a["train"].features["audio"], b["train"].features["audio"])
    assert not np.allclose(a["train"].features["image"], clean["train"].features["image"])
    small = load_avmnist(cache, train_size=16, test_size=8)
    assert len(small["train"]) == 16 and len(small["test"]) == 8 and len(small["val"]) == 40


def test_every_model_of_the_course_runs_on_it(prepared):
    """The fusion zoo's builder and the default encoders take AV-MNIST's schema as it is: a few steps train."""
    import keras

    from mmkeras.apps.compare import build_for_strategy
    from mmkeras.models import build_fusion_classifier
    from mmkeras.training import fit_classifier

    splits = load_avmnist(prepared[0], train_size=64, degrade=True)
    for model in (build_fusion_classifier(splits["train"]), build_for_strategy("gated", splits["train"]),
                  build_fusion_classifier(splits["train"], modalities=["audio"])):
        assert model.output.shape[-1] == 10
        history = fit_classifier(model, splits["train"], epochs=3, batch_size=32, learning_rate=3e-3)
        assert history.history["loss"][-1] < history.history["loss"][0]
        keras.backend.clear_session()


def test_offline_message_names_the_mirror_option(tmp_path, mirror):
    base = f"http://127.0.0.1:{mirror.server_address[1]}/missing/"
    with pytest.raises(DownloadError, match=r"--mirror URL.*MMKERAS_MIRROR.*--fixture"):
        prepare_avmnist(tmp_path, base_url=base, progress=False, retries=0, timeout=5)


def test_fallback_uses_the_stand_in_only_for_the_half_that_failed(tmp_path, mirror, fixture_dir, capsys):
    base = f"http://127.0.0.1:{mirror.server_address[1]}/"
    # the mirror serves the FSDD file (the fixture's, declared as its source); MNIST's real hash never matches
    cache = prepare_avmnist(tmp_path, base_url=base, sources={"fsdd": fixture_specs(fixture_dir)["fsdd"]},
                            fallback="fixture", fixture_images=(120, 30), val_images=20, retries=0, timeout=5)
    halves = cache_info(cache)["sources"]
    assert halves["mnist"]["name"].startswith("mnist-fixture-") and not halves["mnist"]["real"]
    assert halves["fsdd"]["name"] == fixture_specs(fixture_dir)["fsdd"].name
    assert "using the offline stand-in for 'mnist'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="fallback"):
        prepare_avmnist(tmp_path, fallback="zeros")


def test_cli_prepares_the_fixture_offline(tmp_path, capsys):
    from mmkeras.apps.cli import main

    assert main(["prepare", "avmnist", "--fixture", "--data-dir", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "avmnist: ready at" in out and "offline stand-in" in out
    assert main(["prepare", "avmnist", "--data-dir", str(tmp_path / "empty"), "--mirror",
                 "http://127.0.0.1:9/", "--retries", "0", "--timeout", "2", "--quiet"]) == 1
    assert "--mirror URL" in capsys.readouterr().err


def test_data_script_is_the_same_command(tmp_path, capsys):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "data_scripts" / "prepare_avmnist.py"
    spec = importlib.util.spec_from_file_location("prepare_avmnist_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--fixture", "--data-dir", str(tmp_path), "--quiet"]) == 0
    assert "avmnist: ready at" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        script.main(["--retries", "-1"])


def test_noise_recordings_are_resampled_to_the_audio_rate(tmp_path):
    """An ESC-50-like folder (44.1 kHz, stereo) becomes 8 kHz mono clips usable as `noise_clips`."""
    from mmkeras.data.avmnist import read_noise_folder

    for i, seconds in enumerate((1.5, 1.2)):
        t = np.arange(int(44100 * seconds)) / 44100
        tone = (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
        with wave.open(str(tmp_path / f"1-{i}-A-0.wav"), "wb") as out:
            out.setnchannels(2), out.setsampwidth(2), out.setframerate(44100)
            out.writeframes(np.stack([tone, tone], 1).tobytes())
    clips = read_noise_folder(tmp_path)
    assert clips.shape == (2, 9600)  # both cut to the shorter one: 1.2 s at 8 kHz
    spectrum = np.abs(np.fft.rfft(clips[0]))
    assert abs(np.argmax(spectrum) * 8000 / len(clips[0]) - 440) < 2  # the tone survived, at the right pitch
    with pytest.raises(ValueError, match="No 16-bit .wav"):
        read_noise_folder(tmp_path / "missing")
