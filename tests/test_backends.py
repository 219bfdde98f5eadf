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


JAX_GROUPS = {
    # the fusion layers, the multi-task losses, and FusionClassifier built on them, trained, saved and reloaded
    "fusion_layers_losses_and_classifier": [
        "tests/test_fusion_zoo.py", "tests/test_losses.py",
        "tests/test_fusion_and_models.py::test_fusion_classifier_contract[modalities0]",  # text alone
        "tests/test_fusion_and_models.py::test_fusion_classifier_contract[modalities4]",  # all four
        "tests/test_fusion_and_models.py::test_sequence_encoders_feed_the_fusion_with_their_masks",
        "tests/test_fusion_and_models.py::test_any_modality_names_and_classes_build_train_and_evaluate",
    ],
    # the preprocessing split (numeric encoders fed by the preprocessor; the string-reading encoders are skipped
    # on JAX), and what notebooks 09-11 say runs on other backends
    "preprocessing_and_chapter_models": [
        "tests/test_preprocessing.py",
        *(f"tests/test_encoders.py::test_encoder_contract[{case}]" for case in
          ("text_rnn_ids", "text_transformer_sequence_ids", "audio_rnn_log_mel")),
        "tests/backend_checks/test_chapters_on_jax.py",
    ],
}
"""The tests that claim to be backend-agnostic, in groups of about equal cost: one JAX process each, so that
`pytest -n 2` can run them side by side with the rest of the suite."""

@pytest.mark.backend
@pytest.mark.parametrize("group", list(JAX_GROUPS))
def test_backend_agnostic_tests_pass_on_jax(group):
    """A JAX process (a Keras backend is chosen once per process) runs one group of the tests that claim to be
    backend-agnostic: the fusion zoo, the losses and the classifier; the preprocessing split and the chapter models
    of notebooks 09-11."""
    pytest.importorskip("jax", reason="JAX comes with the [test] extra")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-rs",
               *JAX_GROUPS[group]]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    assert done.returncode == 0, done.stdout[-4000:]
    summary = done.stdout.splitlines()[-1]
    assert " passed" in summary and " failed" not in summary, done.stdout[-500:]
    skipped = "".join(line for line in done.stdout.splitlines() if line.startswith("SKIPPED"))
    assert "test_chapters_on_jax.py" not in skipped, done.stdout[-2000:]
