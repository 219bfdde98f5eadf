"""Modality dropout (模态丢弃): train a fusion model to cope with a missing modality.

* `ModalityDropout`: during training, replace each modality's features by zeros with probability `rate`,
  independently per sample (never all of them), so that the fusion learns not to lean on one witness.
* `ModalityPresence`: 1 where a sample's modality is there, 0 where it was removed (an all-zero signal or an
  empty caption). A `FusionClassifier` trained with modality dropout multiplies each modality's features by
  it, so that a removed modality reaches the fusion as zero features at test time too, exactly what modality
  dropout showed it while training. Without it, a blank input goes through its encoder and arrives as some
  features the model never saw (the encoder's biases, a mean caption), not as "nothing".

`mmkeras.missing` measures how a trained model copes (`evaluate_missing`).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from mmkeras._validation import check_fraction


@keras.saving.register_keras_serializable(package="mmkeras")
class ModalityPresence(layers.Layer):
    """Whether each sample of one modality is present: `1.0`, or `0.0` when the input is all zeros (or `""`).

    The convention of `without_modality`: a missing signal is delivered as zeros, a missing caption as the
    empty string. Output: `(batch,)` float. Strings are read with `tf.strings` (text models are TensorFlow
    models anyway); numbers with `keras.ops`.

    Example:
    >>> import numpy as np
    >>> presence = ModalityPresence()
    >>> keras.ops.convert_to_numpy(presence(np.array([[0.0, 0.0], [0.0, 0.5]], "float32"))).tolist()
    [0.0, 1.0]
    """

    def call(self, inputs):
        if keras.backend.standardize_dtype(inputs.dtype) == "string":
            import tensorflow as tf

            present = tf.strings.length(tf.strings.strip(inputs)) > 0  # (batch,)
            return ops.cast(present, self.compute_dtype)
        axes = tuple(range(1, len(inputs.shape)))
        present = ops.any(ops.not_equal(inputs, 0), axis=axes) if axes else ops.not_equal(inputs, 0)
        return ops.cast(present, self.compute_dtype)  # (batch,)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs.shape[0],), dtype=self.compute_dtype)


def _per_sample(factor, x):
    """`factor` `(batch,)` reshaped to broadcast over the other axes of `x`."""
    return ops.cast(ops.reshape(factor, (-1,) + (1,) * (len(x.shape) - 1)), x.dtype)


@keras.saving.register_keras_serializable(package="mmkeras")
class ModalityDropout(layers.Layer):
    """Drops whole modalities at random while training: `z_m <- keep_m * z_m`, `keep_m ~ Bernoulli(1 - rate)`.

    One keep/drop draw per sample and modality; a sample that would lose every modality keeps all of them.
    Unlike ordinary dropout the kept features are not rescaled: a missing modality should look the same in
    training and at test time, a zero vector. For that, pass `presence` (one `ModalityPresence` output per
    modality): features of a removed modality are then zeroed at inference too. Without `presence`, a no-op
    at inference.

    Args:
        rate: float. Probability of dropping each modality, in [0, 1). Defaults to `0.25`.
        seed: int or None. Seed of the layer's own `SeedGenerator`. Defaults to `None`.
        **kwargs: passed on to `keras.layers.Layer`.

    Example:
    >>> dropout = ModalityDropout(0.5, seed=1)
    >>> z = [keras.ops.ones((4, 3)), keras.ops.ones((4, 2))]
    >>> [tuple(x.shape) for x in dropout(z, training=True)]
    [(4, 3), (4, 2)]
    """

    def __init__(self, rate=0.25, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_fraction("rate", rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True  # sequence features keep their padding masks

    def compute_mask(self, inputs, mask=None):
        return mask

    def call(self, features, presence=None, training=None):
        features = list(features)
        if presence is not None:
            if len(presence) != len(features):
                raise ValueError(f"`presence` must hold one entry per modality ({len(features)}). "
                                 f"Received: {len(presence)} entries")
            features = [x * _per_sample(p, x) for x, p in zip(features, presence)]  # removed: zero features
        if not training or self.rate == 0:
            return features
        batch = ops.shape(features[0])[0]
        draws = keras.random.uniform((batch, len(features)), seed=self.seed_generator)  # (batch, M)
        keep = ops.cast(draws >= self.rate, self.compute_dtype)
        none_kept = ops.sum(keep, axis=1, keepdims=True) == 0  # (batch, 1)
        keep = ops.where(none_kept, ops.ones_like(keep), keep)
        return [x * _per_sample(keep[:, index], x) for index, x in enumerate(features)]

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, features, presence=None, training=None):
        return [keras.KerasTensor(x.shape, dtype=x.dtype) for x in features]

    def get_config(self):
        return super().get_config() | {"rate": self.rate, "seed": self.seed}
