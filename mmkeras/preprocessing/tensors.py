"""Where preprocessing hands its TensorFlow tensors to the Keras backend."""

from __future__ import annotations

import keras
import numpy as np


def to_backend(outputs):
    """Eager TensorFlow results -> tensors of the Keras backend (JAX arrays on JAX); graphs stay TensorFlow.

    Preprocessing runs in TensorFlow; inside `tf.data` (a TensorFlow graph) its tensors must stay TensorFlow's,
    but a direct eager call hands them to a model, which on JAX takes JAX arrays.
    """
    import tensorflow as tf

    if tf.inside_function() or keras.backend.backend() == "tensorflow":
        return outputs
    return keras.tree.map_structure(lambda t: keras.ops.convert_to_tensor(np.asarray(t)), outputs)
