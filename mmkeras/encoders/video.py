"""Video feature extractor: the same CNN on every frame (`TimeDistributed`), then an LSTM across frames."""

from __future__ import annotations

import keras
from keras import layers

from mmkeras._validation import check_fraction, check_int, check_shape
from mmkeras.encoders.image import build_conv_stack
from mmkeras.encoders.masking import PaddingMask, sequence_outputs

DEFAULT_VIDEO_SHAPE = (8, 32, 32, 1)  # the moving toys' clips: 8 grayscale 32x32 frames


def build_video_encoder(
    input_shape=DEFAULT_VIDEO_SHAPE,
    filters=(8, 16),
    frame_dim: int = 32,
    hidden_dim: int = 32,
    dropout: float = 0.1,
    sequence_output: bool = False,
    name: str = "video_encoder",
    input_name: str = "video",
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
        sequence_output: bool. Return every frame's state as `{"sequence": (batch, frames, hidden_dim),
            "padding_mask": (batch, frames)}`. Defaults to `False`.
        name: str. The model's name.
        input_name: str. The name of the model's input. Defaults to `"video"`.

    Returns:
        A functional `keras.Model` with input `input_name` and output `(batch, hidden_dim)`.

    Example:
    >>> encoder = build_video_encoder()
    >>> tuple(encoder(keras.ops.zeros((2, 8, 32, 32, 1))).shape)
    (2, 32)
    """
    hidden_dim, frame_dim = check_int("hidden_dim", hidden_dim), check_int("frame_dim", frame_dim)
    check_fraction("dropout", dropout)
    input_shape = check_shape("input_shape", input_shape, rank=4)  # (frames, height, width, channels)
    video = keras.Input(shape=input_shape, name=input_name)  # (batch, T, h, w, c)
    frame_cnn = build_conv_stack(filters, name="frame_cnn", input_shape=input_shape[1:],
                                 output_dim=frame_dim)  # keeps the toy's position, unlike global pooling
    x = layers.TimeDistributed(frame_cnn, name="per_frame_cnn")(video)  # (batch, T, frame_dim)
    x = layers.Dropout(dropout, name="dropout")(x)
    features = layers.LSTM(hidden_dim, return_sequences=sequence_output, name="lstm")(x)  # (batch, hidden_dim)
    if sequence_output:  # (batch, T, hidden_dim) and every frame is valid
        features = sequence_outputs(features, PaddingMask(None, name="padding_mask")(features))
    return keras.Model(video, features, name=name)
