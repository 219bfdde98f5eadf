"""Video feature extractor: the same CNN on every frame (`TimeDistributed`), then an LSTM across frames."""

from __future__ import annotations

import keras
from keras import layers

from mmkeras.data.synthetic import IMAGE_SIZE, NUM_FRAMES
from mmkeras.encoders._checks import fraction, positive_int
from mmkeras.encoders.image import build_conv_stack


def build_video_encoder(
    input_shape=(NUM_FRAMES, IMAGE_SIZE, IMAGE_SIZE, 1),
    filters=(8, 16),
    frame_dim: int = 32,
    hidden_dim: int = 32,
    dropout: float = 0.1,
    sequence_output: bool = False,
    name: str = "video_encoder",
) -> keras.Model:
    """Builds a CNN + RNN video encoder: per-frame CNN features, then an LSTM over time.

    For frames `v_1 .. v_T`, `f_t = ReLU(W flatten(CNN(v_t)) + b)` with one set of weights shared by every frame
    (`TimeDistributed`), and `h_t = LSTM(f_t, h_{t-1})`; the features are the last state `h_T`, which can
    tell which way the toy moves because it has seen the frames in order.

    Args:
        input_shape: tuple. `(frames, height, width, channels)`. Defaults to `(8, 32, 32, 1)`.
        filters: tuple of int. Filters of the per-frame conv blocks. Defaults to `(8, 16)`.
        frame_dim: int. Size of each frame's feature vector. Defaults to `32`.
        hidden_dim: int. LSTM units. Defaults to `32`.
        dropout: float. Dropout on the frame features, in [0, 1). Defaults to `0.1`.
        sequence_output: bool. Return every frame's state `(batch, frames, hidden_dim)`. Defaults to `False`.
        name: str. The model's name.

    Returns:
        A functional `keras.Model` with input `"video"` and output `(batch, hidden_dim)`.

    Example:
    >>> encoder = build_video_encoder()
    >>> encoder(keras.ops.zeros((2, 8, 32, 32, 1))).shape
    TensorShape([2, 32])
    """
    positive_int("hidden_dim", hidden_dim)
    fraction("dropout", dropout)
    if len(tuple(input_shape)) != 4:
        raise ValueError(
            f"`input_shape` must be (frames, height, width, channels). Received: input_shape={input_shape!r}"
        )
    video = keras.Input(shape=tuple(input_shape), name="video")  # (batch, T, h, w, c)
    frame_cnn = build_conv_stack(filters, name="frame_cnn", input_shape=tuple(input_shape)[1:],
                                 output_dim=frame_dim)  # keeps the toy's position, unlike global pooling
    x = layers.TimeDistributed(frame_cnn, name="per_frame_cnn")(video)  # (batch, T, frame_dim)
    x = layers.Dropout(dropout, name="dropout")(x)
    features = layers.LSTM(hidden_dim, return_sequences=sequence_output, name="lstm")(x)  # (batch, hidden_dim)
    return keras.Model(video, features, name=name)
