"""An image encoder that returns a grid of tokens (for attention over *where*), not one vector.

Used by the matcher (notebook 11) and the caption model, whose attention reads the image token by token.
"""

from __future__ import annotations

import keras
import keras_hub
from keras import layers

from mmkeras._validation import check_int, check_positive_ints, check_shape


def build_image_token_encoder(
    input_shape=(32, 32, 3),
    filters=(16, 32, 64),
    token_dim: int | None = None,
    name: str = "image_token_encoder",
    input_name: str = "image",
) -> keras.Model:
    """A CNN that returns a grid of image tokens instead of one vector: what attention needs to look *where*.

    Each block is `Conv2D(3x3) -> ReLU -> MaxPool(2)`; the last feature map `(batch, h, w, c)` is read row by row
    as `h * w` tokens, and a learned position embedding is added, `t_{ij} = F[i, j] + P[i w + j]`, so that the
    tokens say where they are (attention itself ignores the order of its keys).

    Args:
        input_shape: tuple. `(height, width, channels)`, values in [0, 1]. Defaults to `(32, 32, 3)`.
        filters: tuple of int. Filters of each block; each halves the grid. Defaults to `(16, 32, 64)`: a 4x4 grid.
        token_dim: int or None. Project the tokens to this width with a Dense layer. Defaults to `None`
            (width `filters[-1]`).
        name: str. The model's name. Defaults to `"image_token_encoder"`.
        input_name: str. The name of the model's input. Defaults to `"image"`.

    Returns:
        A functional `keras.Model`: `(batch, *input_shape)` -> `(batch, h * w, token_dim or filters[-1])`.

    Example:
    >>> build_image_token_encoder().output_shape
    (None, 16, 64)
    """
    filters = check_positive_ints("filters", filters)
    input_shape = check_shape("input_shape", input_shape, rank=3)
    if input_shape[0] is None or input_shape[1] is None or min(input_shape[:2]) < 2 ** len(filters):
        raise ValueError(f"`input_shape` must be (height, width, channels) with height and width of at least "
                         f"2**len(filters) = {2 ** len(filters)}. Received: input_shape={input_shape!r}")
    image = keras.Input(shape=input_shape, name=input_name)  # (batch, H, W, C)
    x = image
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{i + 1}")(x)  # (batch, h, w, f)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)  # (batch, h/2, w/2, f)
    h, w, c = x.shape[1:]
    tokens = layers.Reshape((h * w, c), name="to_tokens")(x)  # (batch, h*w, c), row-major: token i*w + j
    if token_dim is not None:
        tokens = layers.Dense(check_int("token_dim", token_dim), name="token_projection")(tokens)
    positions = keras_hub.layers.PositionEmbedding(h * w, name="position_embedding")(tokens)  # (batch, h*w, d)
    tokens = layers.Add(name="add_positions")([tokens, positions])
    tokens = layers.LayerNormalization(name="token_norm")(tokens)  # every token at the same scale, for attention
    return keras.Model(image, tokens, name=name)
