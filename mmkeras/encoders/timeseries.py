"""Time-series feature extractor: `(steps, channels)` sensor signals (EEG, IMU, accelerometer, ECG).

Each channel of each example is standardised over that example's own steps (never over the batch), the level
and scale it removed travel along as extra channels, then Conv1D blocks (`kind="cnn"`) or a GRU (`kind="rnn"`)
read the steps in order.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from mmkeras._validation import check_bool, check_choice, check_fraction, check_int, check_number, check_shape
from mmkeras.encoders.masking import PaddingMask, sequence_outputs

NUM_CONV_BLOCKS = 3  # filters hidden_dim / 4, hidden_dim / 2, hidden_dim


@keras.saving.register_keras_serializable(package="mmkeras")
class ChannelStandardization(layers.Layer):
    """Standardises every channel of every example over its own steps, and keeps what it removed.

    For one example `x` of shape `(steps, channels)` and each channel c, with `mu_c` and `sigma_c^2` the mean
    and variance of `x[:, c]` over the steps:

        x_hat[t, c] = (x[t, c] - mu_c) / sqrt(sigma_c^2 + epsilon)

    so that microvolts and g's, offsets and gains, all reach the network on one scale (the z-normalisation of
    the UCR/UEA time-series archives). The statistics depend on the example alone: its features never change
    with the other examples of its batch. What the standardisation removes can be what tells the classes apart
    (lying and standing differ in the mean of an accelerometer axis, walking and running in its spread), so with
    `keep_statistics=True` each channel's level `sign(mu_c) log(1 + |mu_c|)` and scale
    `log sqrt(sigma_c^2 + epsilon)`, both compressed by a logarithm whatever the unit, are appended as
    channels that are constant over the steps.

    Args:
        keep_statistics: bool. Append the level and scale of every channel. Defaults to `True`.
        epsilon: float > 0. Added to the variance. Small (`1e-12`) so that signals in volts (EEG, about
            1e-5 V) keep their shape; a constant channel becomes zeros. Defaults to `1e-12`.
        **kwargs: passed on to `keras.layers.Layer`.

    Input `(batch, steps, channels)`; output `(batch, steps, channels)`, or `(batch, steps, 3 * channels)`
    with the statistics. The statistics are computed in float32 even under a `mixed_float16` policy (the
    output is then cast to float16): a float16 `epsilon` of 1e-12 would be 0, and a constant channel 0 / 0.

    Example:
    >>> layer = ChannelStandardization(keep_statistics=False)
    >>> x = keras.ops.convert_to_tensor([[[1.0, 10.0], [3.0, 10.0]]])  # (1, 2 steps, 2 channels)
    >>> keras.ops.convert_to_numpy(layer(x)).round(3).tolist()
    [[[-1.0, 0.0], [1.0, 0.0]]]
    """

    def __init__(self, keep_statistics=True, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.keep_statistics = check_bool("keep_statistics", keep_statistics)
        self.epsilon = check_number("epsilon", epsilon, low=0, low_inclusive=False)

    def call(self, inputs):
        inputs = ops.cast(inputs, "float32")  # in float32 even under mixed_float16: epsilon and squares fit
        mean = ops.mean(inputs, axis=1, keepdims=True)  # (batch, 1, channels): this example's own
        variance = ops.mean(ops.square(inputs - mean), axis=1, keepdims=True)  # (batch, 1, channels)
        scale = ops.sqrt(variance + self.epsilon)
        standardized = (inputs - mean) / scale  # (batch, steps, channels)
        if not self.keep_statistics:
            return ops.cast(standardized, self.compute_dtype)
        level = ops.sign(mean) * ops.log1p(ops.abs(mean))  # (batch, 1, channels): signed log of the mean
        statistics = ops.concatenate([level, ops.log(scale)], axis=-1)  # (batch, 1, 2 * channels)
        statistics = statistics * ops.ones_like(inputs[:, :, :1])  # (batch, steps, 2 * channels): on every step
        outputs = ops.concatenate([standardized, statistics], axis=-1)  # (batch, steps, 3 * channels)
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        if self.keep_statistics and channels is not None:
            channels = 3 * channels
        return (*input_shape[:-1], channels)

    def get_config(self):
        return super().get_config() | {"keep_statistics": self.keep_statistics, "epsilon": self.epsilon}


def build_timeseries_encoder(
    input_shape,
    kind: str = "cnn",
    hidden_dim: int = 32,
    kernel_size: int = 5,
    dropout: float = 0.1,
    keep_statistics: bool = True,
    sequence_output: bool = False,
    name: str = "timeseries_encoder",
    input_name: str = "timeseries",
) -> keras.Model:
    """Builds a time-series encoder: per-example channel standardisation -> Conv1D blocks or a GRU.

    `kind="cnn"`: three blocks `ReLU(conv1d(x))` with `hidden_dim / 4`, `hidden_dim / 2` and `hidden_dim`
    filters of width `kernel_size`, each followed by max pooling that halves the steps (skipped once a single
    step is left, so that short series work too); the mean over the remaining steps is the feature vector:
    which patterns occur, wherever they occur. `kind="rnn"`: a GRU reads the steps in order,
    `h_t = GRU(h_{t-1}, x_t)`, and its last state is the feature vector.

    Args:
        input_shape: tuple. `(steps, channels)`, or `(steps,)` for one channel.
        kind: str. `"cnn"` or `"rnn"`. Defaults to `"cnn"` (faster on long series).
        hidden_dim: int. Filters of the last conv block, or GRU units: the size of the features. Defaults to `32`.
        kernel_size: int. Width of the convolutions, in steps (`kind="cnn"`). Defaults to `5`.
        dropout: float. Dropout rate in [0, 1), on the features (`"cnn"`) or on the GRU's inputs (`"rnn"`).
            Defaults to `0.1`.
        keep_statistics: bool. Let the encoder see each channel's level and scale next to its standardised
            shape (`ChannelStandardization`). Defaults to `True`.
        sequence_output: bool. Return every step's features as
            `{"sequence": (batch, steps', hidden_dim), "padding_mask": (batch, steps')}` for attention-based
            fusion: all steps for `"rnn"`, the pooled steps (about `steps / 8`) for `"cnn"`. Defaults to `False`.
        name: str. The model's name. Defaults to `"timeseries_encoder"`.
        input_name: str. The name of the model's input. Defaults to `"timeseries"`.

    Returns:
        A functional `keras.Model` from `(batch, *input_shape)` to `(batch, hidden_dim)`.

    Example:
    >>> encoder = build_timeseries_encoder((128, 4))
    >>> tuple(encoder(keras.ops.zeros((2, 128, 4))).shape)
    (2, 32)
    """
    input_shape = check_shape("input_shape", input_shape)
    if len(input_shape) not in (1, 2) or None in input_shape:
        raise ValueError(f"`input_shape` must be (steps, channels) or (steps,), with known sizes. "
                         f"Received: input_shape={input_shape!r}")
    check_choice("kind", kind, ("cnn", "rnn"))
    hidden_dim, kernel_size = check_int("hidden_dim", hidden_dim), check_int("kernel_size", kernel_size)
    check_fraction("dropout", dropout)
    check_bool("keep_statistics", keep_statistics)
    check_bool("sequence_output", sequence_output)
    series = keras.Input(shape=input_shape, name=input_name)  # (batch, steps[, channels])
    x = series
    if len(input_shape) == 1:
        x = layers.Reshape((input_shape[0], 1), name="add_channel_axis")(x)  # (batch, steps, 1)
    x = ChannelStandardization(keep_statistics, name="channel_standardization")(x)  # (batch, steps, 3 * channels)
    if kind == "cnn":
        widths = [max(1, hidden_dim // 2 ** (NUM_CONV_BLOCKS - 1 - i)) for i in range(NUM_CONV_BLOCKS)]
        for i, filters in enumerate(widths):
            x = layers.Conv1D(filters, kernel_size, padding="same", activation="relu", name=f"conv{i + 1}")(x)
            if x.shape[1] >= 2:  # (batch, steps, filters) -> (batch, steps // 2, filters), never below 1 step
                x = layers.MaxPooling1D(2, name=f"pool{i + 1}")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        if sequence_output:  # (batch, steps', hidden_dim) and every step is valid
            return keras.Model(series, sequence_outputs(x, PaddingMask(None, name="padding_mask")(x)), name=name)
        features = layers.GlobalAveragePooling1D(name="global_pool")(x)  # (batch, hidden_dim)
    else:
        x = layers.Dropout(dropout, name="dropout")(x)
        features = layers.GRU(hidden_dim, return_sequences=sequence_output, name="gru")(x)
        if sequence_output:  # (batch, steps, hidden_dim) and every step is valid
            features = sequence_outputs(features, PaddingMask(None, name="padding_mask")(features))
    return keras.Model(series, features, name=name)
