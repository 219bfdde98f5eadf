"""Feature-vector encoder: a small MLP for a modality that already is a vector (tabular data, precomputed
embeddings, sensor summaries)."""

from __future__ import annotations

import keras
from keras import layers

from mmkeras._validation import check_fraction, check_int, check_shape


def build_vector_encoder(
    input_shape,
    hidden_dim: int = 64,
    output_dim: int = 32,
    dropout: float = 0.1,
    name: str = "vector_encoder",
    input_name: str = "vector",
) -> keras.Model:
    """Builds `features = ReLU(W_2 Dropout(ReLU(W_1 x + b_1)) + b_2)` for inputs `x` of shape `(batch, d)`.

    Args:
        input_shape: tuple. `(d,)`, the size of one sample's vector.
        hidden_dim: int. Units of the hidden layer. Defaults to `64`.
        output_dim: int. Size of the feature vector. Defaults to `32`.
        dropout: float. Dropout between the layers, in [0, 1). Defaults to `0.1`.
        name: str. The model's name.
        input_name: str. The name of the model's input. Defaults to `"vector"`.

    Returns:
        A functional `keras.Model` from `(batch, d)` to `(batch, output_dim)`.

    Example:
    >>> build_vector_encoder((20,)).output_shape
    (None, 32)
    """
    input_shape = check_shape("input_shape", input_shape, rank=1)
    hidden_dim, output_dim = check_int("hidden_dim", hidden_dim), check_int("output_dim", output_dim)
    check_fraction("dropout", dropout)
    vector = keras.Input(shape=input_shape, name=input_name)  # (batch, d)
    x = layers.Dense(hidden_dim, activation="relu", name="hidden")(vector)  # (batch, hidden_dim)
    x = layers.Dropout(dropout, name="dropout")(x)
    features = layers.Dense(output_dim, activation="relu", name="features")(x)  # (batch, output_dim)
    return keras.Model(vector, features, name=name)
