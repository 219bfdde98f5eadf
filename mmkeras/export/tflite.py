"""TFLite (LiteRT) export: float32, float16 and int8 flat buffers of a numeric model, batch size 1.

The GRU of the audio encoder runs a `while` loop over frames, and that loop becomes builtin TFLite ops only with
a *static batch size*: with a `None` batch, the converter keeps TensorList ops that only the Flex delegate runs
(and the TFLite interpreter in TensorFlow's pip wheel cannot load Flex ops). So the files are converted with
batch size 1, the single-example shape of an app. The mel spectrogram's `RFFT` becomes the builtin `RFFT2D`;
for int8 the mel matrix is kept in float32 (`mmkeras.export.spectrogram`).
"""

from __future__ import annotations

import pathlib
import tempfile

from mmkeras._validation import check_choice
from mmkeras.export.graph import head_names, input_specs
from mmkeras.export.saved_model import write_archive

TFLITE_QUANTIZATIONS = ("float32", "float16", "int8")


def export_tflite(model, path, quantization: str = "float32") -> pathlib.Path:
    """Converts a numeric model to a TFLite flat buffer, batch size 1 (see the module docstring for why).

    Quantization (量化):
    - `"float32"`: weights and arithmetic in float32.
    - `"float16"`: weights stored as float16 (half the size), expanded to float32 when the model runs on CPU.
    - `"int8"`: dynamic-range quantization: each weight tensor becomes int8 with a float scale,
      `w ~ s * q`, `q = round(w / s)` in [-127, 127], `s = max|w| / 127` (per output channel where the op allows);
      activations are quantized on the fly, per batch, for the matrix products. About 4x smaller than float32.
      The mel filter bank of an audio encoder stays float32 (`PortableMelSpectrogram(float_mel_blocks=True)`).

    Only TFLite builtin ops are allowed (no Flex): a model that reads strings must be split first
    (`split_preprocessing(model).core`).

    Args:
        model: keras.Model with named numeric inputs.
        path: str or Path. The `.tflite` file to write.
        quantization: str. One of `TFLITE_QUANTIZATIONS`. Defaults to `"float32"`.

    Returns:
        The path written.

    Raises:
        ValueError: an input is a string, or `quantization` is unknown.
    """
    import tensorflow as tf

    from mmkeras.export.spectrogram import with_portable_spectrograms  # imports Keras: only when converting

    check_choice("quantization", quantization, TFLITE_QUANTIZATIONS)
    strings = [name for name, (_, dtype) in input_specs(model).items() if dtype == "string"]
    if strings:
        raise ValueError(f"TFLite builtin ops cannot read strings: convert `split_preprocessing(model).core` "
                         f"instead. Received string inputs: {strings}")
    path = pathlib.Path(path)
    portable = with_portable_spectrograms(model, float_mel_blocks=quantization == "int8")
    with tempfile.TemporaryDirectory() as scratch:
        # a static batch lets the GRU's loop become builtin ops
        write_archive(portable, scratch, batch_size=1, heads=head_names(model))
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch, signature_keys=["serving_default"])
        if quantization != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        flatbuffer = converter.convert()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flatbuffer)
    return path
