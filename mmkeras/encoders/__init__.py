"""One feature extractor per modality, each a functional `keras.Model` from its named input to features.

Every builder takes its input shape as an argument (the moving toys' shapes are the defaults) and returns a
model whose output is a feature vector `(batch, output_dim)`; with `sequence_output=True` the RNN and
Transformer encoders return `{"sequence": (batch, steps, features), "padding_mask": (batch, steps)}` instead,
for attention-based fusion.

`build_encoders(data)` builds a default encoder for every modality a schema declares, whatever their names:
the modality's `kind` picks the builder, its shape sizes the input, and each encoder is named
`"<modality>_encoder"` so that two cameras get two encoders.
"""

from __future__ import annotations

import warnings

from mmkeras.encoders.audio import DecibelFloor, build_audio_encoder, mel_spectrogram_layer
from mmkeras.encoders.image import (
    InferenceMode,
    TrainingOnly,
    build_conv_stack,
    build_image_encoder,
    build_pretrained_image_encoder,
)
from mmkeras.encoders.masking import PaddingMask
from mmkeras.encoders.text import (
    BertTextEncoder,
    build_bert_text_encoder,
    build_text_encoder,
    caption_tokenizer,
    learn_vocabulary,
)
from mmkeras.encoders.timeseries import ChannelStandardization, build_timeseries_encoder
from mmkeras.encoders.vector import build_vector_encoder
from mmkeras.encoders.video import build_video_encoder

BUILDERS = {
    "text": build_text_encoder,
    "image": build_image_encoder,
    "audio": build_audio_encoder,
    "video": build_video_encoder,
    "vector": build_vector_encoder,
    "timeseries": build_timeseries_encoder,
}
"""The default builder of each kind of modality (`mmkeras.data.KINDS`)."""


def build_encoder(spec, preprocessed: bool = False, **kwargs):
    """Builds the default encoder of one modality from its `ModalitySpec`.

    The spec's shape, sample rate and vocabulary fill in the builder's arguments; `kwargs` override them or
    set anything else (`hidden_dim=`, `kind="cnn"`, ...).

    Image pixels: the image encoder expects values in [0, 1]. A modality declared (or inferred from a NumPy
    array) as `dtype="uint8"` holds 0-255 pixels, so they are rescaled by `1 / 255` (in the model, or in the
    preprocessor with `preprocessed=True`). Other integer images (`"int32"`) have no known range: they are fed
    as they are, with a warning, unless you pass `rescale=` yourself (e.g. `rescale=1 / 255`, or `None` to
    silence it); floats are taken to be in [0, 1] already. Integer videos are fed as they are, with a warning.

    Args:
        spec: ModalitySpec. The modality.
        preprocessed: bool. Build the numeric encoder that reads what `mmkeras.preprocessing.build_preprocessor`
            makes of this modality (token ids, log-mel spectrograms, rescaled pixels) instead of the raw input.
            Defaults to `False`.
        **kwargs: the builder's arguments.

    Example:
    >>> from mmkeras.data import ModalitySpec
    >>> encoder = build_encoder(ModalitySpec("left_cam", (28, 28)))
    >>> encoder.name, encoder.input_shape
    ('left_cam_encoder', (None, 28, 28))
    >>> build_encoder(ModalitySpec("eeg", (128, 4))).output_shape  # a time series: Conv1D blocks
    (None, 32)
    >>> build_encoder(ModalitySpec("cam", (28, 28), dtype="uint8")).get_layer("rescaling").scale
    0.00392156862745098
    >>> build_encoder(ModalitySpec("note", (), dtype="string"), preprocessed=True, vocabulary=["red"]).input_shape
    (None, 12)
    """
    arguments = encoder_arguments(spec, **kwargs)
    return _build(spec.kind, arguments, preprocessed)


def _build(kind: str, arguments: dict, preprocessed: bool):
    if preprocessed:
        arguments = {k: v for k, v in arguments.items() if k != "rescale"}  # the preprocessor rescales
        if kind in PREPROCESSED_KINDS:
            arguments["preprocessed"] = True
    return BUILDERS[kind](**arguments)


PREPROCESSED_KINDS = ("text", "audio", "image")
"""The kinds whose builders take `preprocessed=True`: the others read numbers already."""


def encoder_arguments(spec, **kwargs) -> dict:
    """The arguments of a modality's default builder: from its spec, then `kwargs` on top.

    Example:
    >>> from mmkeras.data import ModalitySpec
    >>> encoder_arguments(ModalitySpec("speech", (16000,), kind="audio", sample_rate=16000), hidden_dim=8)
    {'name': 'speech_encoder', 'input_name': 'speech', 'num_samples': 16000, 'sample_rate': 16000, 'hidden_dim': 8}
    """
    from mmkeras.data.schema import ModalitySpec

    if not isinstance(spec, ModalitySpec):
        raise ValueError(f"`spec` must be a mmkeras.data.ModalitySpec (a name, a shape, a kind). Received: {spec!r}")
    arguments = {"name": f"{spec.name}_encoder", "input_name": spec.name}
    if spec.kind == "text":
        arguments["vocabulary"] = spec.vocabulary
    elif spec.kind == "audio":
        arguments |= {"num_samples": spec.shape[0], "sample_rate": spec.sample_rate}
    else:
        arguments["input_shape"] = spec.shape
    if spec.kind == "image" and spec.dtype == "uint8":
        arguments["rescale"] = 1 / 255  # 0-255 pixels -> [0, 1], what the encoder expects
    elif spec.kind == "image" and spec.dtype == "int32" and "rescale" not in kwargs:
        warnings.warn(
            f"Image modality {spec.name!r} holds integers (int32) of unknown range, fed to its encoder as they are; "
            f"it expects values in [0, 1]. For 0-255 pixels give the array as uint8, or pass "
            f"{spec.name}={{'rescale': 1 / 255}} (`rescale=None` keeps the values and silences this warning).",
            stacklevel=3,
        )
    elif spec.kind == "video" and spec.dtype in ("uint8", "int32"):
        warnings.warn(f"Video modality {spec.name!r} holds integers ({spec.dtype}), fed to its encoder as they are; "
                      f"it expects values in [0, 1]: divide the frames by 255 (as float32) first.", stacklevel=3)
    return arguments | kwargs


def resolve_encoder_arguments(data, modalities=None, overrides=None):
    """`(schema, {modality: builder arguments})` for the chosen modalities of a dataset or schema.

    A text modality without a vocabulary (in the schema or the overrides) learns one from the captions of
    `data` (pass the training split); a schema alone then raises.
    """
    from mmkeras.data.schema import DataSchema, MultimodalData

    overrides = dict(overrides or {})
    if isinstance(data, MultimodalData):
        schema, arrays = data.schema, data.features
    elif isinstance(data, DataSchema):
        schema, arrays = data, None
    else:
        raise ValueError(f"`data` must be a MultimodalData or a DataSchema. Received: {type(data).__name__}")
    names = schema.select_modalities(modalities)
    unknown = set(overrides) - set(names)
    if unknown:
        raise ValueError(f"Overrides name modalities that are not built, {sorted(unknown)}; expected names from "
                         f"{names}. Received: {sorted(overrides)}")
    arguments = {}
    for name in names:
        spec, kwargs = schema.modality(name), dict(overrides.get(name, {}))
        if spec.kind == "text" and spec.vocabulary is None and "vocabulary" not in kwargs:
            if arrays is None:
                raise ValueError(f"Text modality {name!r} has no vocabulary in the schema: pass the training data "
                                 f"(MultimodalData) to learn one, or {name}={{'vocabulary': [...]}}")
            kwargs["vocabulary"] = learn_vocabulary(arrays[name])
        arguments[name] = encoder_arguments(spec, **kwargs)
    return schema, arguments


def build_encoders(data, modalities=None, preprocessed: bool = False, **overrides) -> dict:
    """Default encoders `{modality: keras.Model}` for the modalities of a dataset, whatever their names.

    Args:
        data: MultimodalData or DataSchema. With data, a text modality without a vocabulary in the schema
            learns one from these captions (pass the training split).
        modalities: list of str or None. Which modalities. Defaults to all of the schema's.
        preprocessed: bool. Numeric encoders that read what `mmkeras.preprocessing.build_preprocessor(data)`
            makes (see `build_encoder`). Defaults to `False`.
        **overrides: per-modality keyword arguments, e.g. `audio={"kind": "cnn"}`.

    Example:
    >>> import numpy as np
    >>> from mmkeras.data import MultimodalData
    >>> data = MultimodalData({"left": np.zeros((4, 16, 16, 3)), "right": np.zeros((4, 16, 16, 3))},
    ...                       {"label": np.array([0, 1, 2, 0])})
    >>> sorted(encoder.name for encoder in build_encoders(data).values())
    ['left_encoder', 'right_encoder']
    """
    schema, arguments = resolve_encoder_arguments(data, modalities, overrides)
    return {name: _build(schema.modality(name).kind, kwargs, preprocessed) for name, kwargs in arguments.items()}


__all__ = [
    "BUILDERS",
    "BertTextEncoder",
    "ChannelStandardization",
    "DecibelFloor",
    "InferenceMode",
    "PaddingMask",
    "TrainingOnly",
    "build_audio_encoder",
    "build_bert_text_encoder",
    "build_conv_stack",
    "build_encoder",
    "build_encoders",
    "caption_tokenizer",
    "encoder_arguments",
    "resolve_encoder_arguments",
    "PREPROCESSED_KINDS",
    "build_image_encoder",
    "build_pretrained_image_encoder",
    "build_text_encoder",
    "build_timeseries_encoder",
    "build_vector_encoder",
    "build_video_encoder",
    "learn_vocabulary",
    "mel_spectrogram_layer",
]
