"""Run under KERAS_BACKEND=jax by tests/test_backends.py (this folder is not collected otherwise): which parts of
notebooks 09-11 run on JAX. The notebooks claim exactly these: the GAN's losses and sampling (its training is
TensorFlow-only and refuses clearly), the CLIP loss, and the training of the dual encoder, the matcher and the
caption model (their tokenizers run beside them)."""

import keras
import numpy as np
import pytest

from mmkeras.captioning import train_caption_model
from mmkeras.contrastive import clip_loss, train_clip
from mmkeras.data.scenes import make_scenes
from mmkeras.generative import gan as gen
from mmkeras.matching import make_matching_pairs, matching_report, train_matcher

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax", reason="the JAX half of tests/test_backends.py")


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(64, seed=0)


def test_09_gan_losses_and_sampling_run_and_training_refuses_clearly():
    assert abs(float(gen.discriminator_loss(np.zeros((4, 1)), np.zeros((4, 1)))) - 2 * np.log(2)) < 1e-5
    assert abs(float(gen.generator_loss(np.zeros((4, 1)))) - np.log(2)) < 1e-5
    cgan = gen.build_conditional_gan(8, filters=4)
    images = cgan.sample(3, gen.caption_to_condition("a small red cross at the top left"))
    assert images.shape == (3, 32, 32, 3) and 0 <= images.min() and images.max() <= 1
    with pytest.raises(NotImplementedError, match="TensorFlow backend"):
        cgan.fit(np.zeros((4, 32, 32, 3), "float32"), np.zeros((4, gen.CONDITION_DIM), "float32"), epochs=1,
                 verbose=0)


def test_10_clip_loss_equals_the_formula():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 8)).astype("float32"), rng.normal(size=(5, 8)).astype("float32")
    a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    logits = np.exp(np.log(1 / 0.07)) * a @ b.T
    log_rows = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    log_cols = logits - np.log(np.exp(logits).sum(0, keepdims=True))
    expected = -(np.diag(log_rows).mean() + np.diag(log_cols).mean()) / 2
    assert abs(float(clip_loss(a, b, np.log(1 / 0.07))) - expected) < 1e-4


def test_10_the_dual_encoder_trains(scenes):
    _, history = train_clip(scenes, epochs=3, batch_size=32, seed=0, embedding_dim=8, filters=(4,), image_features=8)
    assert history["loss"][-1] < history["loss"][0], history["loss"]


def test_11_the_matcher_trains_and_predicts_through_its_preprocessor(scenes):
    pairs = make_matching_pairs(scenes, 1, 1, seed=0)
    matcher, result = train_matcher(pairs, epochs=3, batch_size=32, seed=0, filters=(4, 8), embedding_dim=8, width=8,
                                    hidden_dim=8, learning_rate=1e-2)
    assert result.history["loss"][-1] < result.history["loss"][0], result.history["loss"]
    assert 0 <= matching_report(matcher, pairs)["accuracy"] <= 1


def test_11_the_caption_model_trains(scenes):
    _, history = train_caption_model(scenes, epochs=3, batch_size=32, seed=0)
    assert history["loss"][-1] < history["loss"][0], history["loss"]
