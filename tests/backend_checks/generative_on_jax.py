"""Run under KERAS_BACKEND=jax by tests/test_backends.py: which parts of notebooks 09-11 run on JAX.

Prints one line per check; exits non-zero if a check that the notebooks claim runs on any backend fails.
"""

import os

import numpy as np

assert os.environ.get("KERAS_BACKEND") == "jax"
import keras  # noqa: E402

from mmkeras.captioning import train_caption_model  # noqa: E402
from mmkeras.contrastive import clip_loss, train_clip  # noqa: E402
from mmkeras.data.scenes import make_scenes  # noqa: E402
from mmkeras.generative import gan as gen  # noqa: E402
from mmkeras.matching import make_matching_pairs, matching_report, train_matcher  # noqa: E402

assert keras.backend.backend() == "jax"

# 09: the losses and sampling run on JAX; training raises a clear error (its train step uses tf.GradientTape).
assert abs(float(gen.discriminator_loss(np.zeros((4, 1)), np.zeros((4, 1)))) - 2 * np.log(2)) < 1e-5
assert abs(float(gen.generator_loss(np.zeros((4, 1)))) - np.log(2)) < 1e-5
cgan = gen.build_conditional_gan(8, filters=4)
images = cgan.sample(3, gen.caption_to_condition("a small red cross at the top left"))
assert images.shape == (3, 32, 32, 3) and 0 <= images.min() and images.max() <= 1
try:
    cgan.fit(np.zeros((4, 32, 32, 3), "float32"), np.zeros((4, gen.CONDITION_DIM), "float32"), epochs=1, verbose=0)
except NotImplementedError as error:
    assert "TensorFlow backend" in str(error)
else:
    raise AssertionError("GAN.fit should refuse a non-TensorFlow backend")
print("09 gan: losses and sampling on jax; training refuses with a clear error")

# 10: the CLIP loss is keras.ops: same value as the formula computed in NumPy.
rng = np.random.default_rng(0)
a, b = rng.normal(size=(5, 8)).astype("float32"), rng.normal(size=(5, 8)).astype("float32")
a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
logits = np.exp(np.log(1 / 0.07)) * a @ b.T
log_rows = logits - np.log(np.exp(logits).sum(1, keepdims=True))
log_cols = logits - np.log(np.exp(logits).sum(0, keepdims=True))
expected = -(np.diag(log_rows).mean() + np.diag(log_cols).mean()) / 2
assert abs(float(clip_loss(a, b, np.log(1 / 0.07))) - expected) < 1e-4
print("10 clip_loss: on jax, equal to the formula")

# 10: the dual encoder reads token ids (its tokenizer runs beside it, in tf.data), so it trains on JAX.
scenes = make_scenes(64, seed=0)
clip, clip_history = train_clip(scenes, epochs=3, batch_size=32, seed=0, embedding_dim=8, filters=(4,),
                                image_features=8)
assert clip_history["loss"][-1] < clip_history["loss"][0], clip_history["loss"]
print("10 CLIP model: trains on jax, loss", [round(v, 3) for v in clip_history["loss"]])

# 11: so does the matcher.
pairs = make_matching_pairs(scenes, 1, 1, seed=0)
matcher, matcher_result = train_matcher(pairs, epochs=3, batch_size=32, seed=0, filters=(4, 8), embedding_dim=8,
                                        width=8, hidden_dim=8, learning_rate=1e-2)
matcher_loss = matcher_result.history["loss"]
assert matcher_loss[-1] < matcher_loss[0], matcher_loss
assert matching_report(matcher, pairs)["accuracy"] >= 0  # predict maps the preprocessor on JAX too
print("11 matcher: trains on jax, loss", [round(v, 3) for v in matcher_loss])

# 11: the caption model takes token ids (its tokenizer is Python), so it trains on JAX.
model, history = train_caption_model(scenes, epochs=3, batch_size=32, seed=0)
assert history["loss"][-1] < history["loss"][0], history["loss"]
print("11 caption model: trains on jax, loss", [round(v, 3) for v in history["loss"]])
