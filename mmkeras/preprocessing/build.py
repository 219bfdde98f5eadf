"""`build_preprocessor(data)`: the `MultimodalPreprocessor` that matches `build_encoders(data, preprocessed=True)`."""

from __future__ import annotations

import inspect

from mmkeras.encoders import BUILDERS, caption_tokenizer, resolve_encoder_arguments
from mmkeras.preprocessing.audio import LogMelSpectrogram
from mmkeras.preprocessing.image import PixelRescaling
from mmkeras.preprocessing.multimodal import MultimodalPreprocessor


def _default(kind: str, argument: str):
    """The default of one of a builder's arguments: one source of truth for the encoder and its preprocessor."""
    return inspect.signature(BUILDERS[kind]).parameters[argument].default


def modality_step(spec, arguments: dict):
    """The preprocessing step of one modality, from its spec and its encoder's arguments (or `None`).

    text: `caption_tokenizer(vocabulary, sequence_length)`; audio: `LogMelSpectrogram` with the encoder's STFT
    and mel settings; image: `PixelRescaling(rescale)` when the pixels need it (uint8, or `rescale=` given);
    other kinds read numbers already.
    """
    def get(argument):
        return arguments.get(argument, _default(spec.kind, argument))

    if spec.kind == "text":
        return caption_tokenizer(arguments["vocabulary"], get("sequence_length"), name=f"{spec.name}_tokenizer")
    if spec.kind == "audio":
        return LogMelSpectrogram(arguments["sample_rate"], fft_length=get("fft_length"),
                                 hop_length=get("hop_length"), num_mel_bins=get("num_mel_bins"),
                                 name=f"{spec.name}_log_mel")
    if spec.kind == "image" and arguments.get("rescale") is not None:
        return PixelRescaling(arguments["rescale"], name=f"{spec.name}_rescaling")
    return None


def build_preprocessor(data, modalities=None, name: str = "preprocessor", **overrides) -> MultimodalPreprocessor:
    """The preprocessor of a dataset's modalities: what `build_encoders(data, preprocessed=True)` reads.

    Captions become token ids, waveforms log-mel spectrograms, 0-255 pixels floats in [0, 1]; the other
    modalities pass as float32. Give it the same `modalities` and per-modality overrides as the encoders.

    Args:
        data: MultimodalData or DataSchema. With data, a text modality without a vocabulary learns it from
            these captions (the training split), as `build_encoders` does.
        modalities: list of str or None. Which modalities. Defaults to all of the schema's.
        name: str. The layer's name. Defaults to `"preprocessor"`.
        **overrides: per-modality arguments of the encoders, e.g. `audio={"num_mel_bins": 40}`.

    Example:
    >>> import numpy as np
    >>> from mmkeras.data import make_synthetic
    >>> data = make_synthetic(4)
    >>> preprocessor = build_preprocessor(data, modalities=["text", "audio"])
    >>> out = preprocessor({m: data.features[m] for m in ("text", "audio")})
    >>> tuple(out["text"].shape), tuple(out["audio"].shape)
    ((4, 12), (4, 32, 32))
    """
    schema, arguments = resolve_encoder_arguments(data, modalities, overrides)
    steps, specs = {}, {}
    for modality, kwargs in arguments.items():
        spec = schema.modality(modality)
        steps[modality] = modality_step(spec, kwargs)
        specs[modality] = {"shape": list(spec.shape), "dtype": spec.dtype}
    return MultimodalPreprocessor(steps, specs, name=name)


def image_text_preprocessor(vocabulary, sequence_length: int, image_shape,
                            name: str = "preprocessor") -> MultimodalPreprocessor:
    """The preprocessor of an image-caption model: captions -> token ids, float images as they are.

    What the chapter models of the captioned scenes read (`build_clip_model`, `ImageTextMatcher`): their text
    encoder takes the ids of `caption_tokenizer(vocabulary, sequence_length)`.

    Example:
    >>> preprocessor = image_text_preprocessor(["red", "cross"], 4, (32, 32, 3))
    >>> print(preprocessor.describe())
    Preprocessor 'preprocessor' (TensorFlow, in tf.data):
      image: float32 (32, 32, 3) -> float32 as it is
      text: string () -> TextVectorization
    """
    return MultimodalPreprocessor(
        {"image": None, "text": caption_tokenizer(vocabulary, sequence_length, name="text_tokenizer")},
        {"image": {"shape": [int(d) for d in image_shape], "dtype": "float32"},
         "text": {"shape": [], "dtype": "string"}}, name=name)
