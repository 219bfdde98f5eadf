"""The fusion layers, the multi-task losses and the task models are written with `keras.ops` only, so they run
on any Keras backend: their tests pass again under JAX, in a fresh process (a Keras backend is chosen once per
process). Text models included: their tokenizer runs beside them, in the preprocessor (TensorFlow, in tf.data)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.backend
def test_fusion_and_loss_tests_pass_on_jax():
    pytest.importorskip("jax", reason="JAX comes with the [test] extra")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
               "tests/test_fusion_zoo.py", "tests/test_losses.py"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:]
    assert " passed" in done.stdout.splitlines()[-1], done.stdout[-500:]


@pytest.mark.backend
def test_model_text_and_preprocessing_tests_pass_on_jax():
    """The done-when of the preprocessing split: FusionClassifier with text, audio and images, its numeric encoders
    and its preprocessor, trained, saved and reloaded under JAX (string-reading encoders are skipped there)."""
    pytest.importorskip("jax", reason="JAX comes with the [test] extra")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
               "tests/test_preprocessing.py",
               "tests/test_fusion_and_models.py::test_fusion_classifier_contract[modalities0]",  # text alone
               "tests/test_fusion_and_models.py::test_fusion_classifier_contract[modalities4]",  # all four
               "tests/test_fusion_and_models.py::test_sequence_encoders_feed_the_fusion_with_their_masks",
               "tests/test_fusion_and_models.py::test_any_modality_names_and_classes_build_train_and_evaluate",
               *(f"tests/test_encoders.py::test_encoder_contract[{case}]" for case in
                 ("text_rnn_ids", "text_transformer_sequence_ids", "audio_rnn_log_mel"))]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:]
    summary = done.stdout.splitlines()[-1]
    assert " passed" in summary and " failed" not in summary, done.stdout[-500:]


@pytest.mark.backend
def test_generative_chapters_backend_claims_hold_on_jax():
    """Notebooks 09-11 say which steps run on other backends: the GAN's losses and sampling (its training is
    TensorFlow-only and says so), the CLIP loss, and the training of the dual encoder, the matcher and the caption
    model (their tokenizers run beside them). Check exactly that."""
    pytest.importorskip("jax", reason="JAX comes with the [test] extra")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "backend_checks" / "generative_on_jax.py")],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    for claim in ("10 CLIP model: trains on jax", "11 matcher: trains on jax", "11 caption model: trains on jax"):
        assert claim in done.stdout, done.stdout
