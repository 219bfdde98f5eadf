"""A model in two halves: a *preprocessor* (strings -> token ids, and the rest of the raw-input work; runs in
TensorFlow) and a *numeric core* (numbers in, logits out), for the runtimes that cannot run TensorFlow's string
ops (TFLite's builtin ops, ONNX).

A `FusionClassifier` built from data is split already: `model.preprocessor` is the first half and the model's
own graph the core (`split_preprocessing` just names them). A model whose text encoder holds its tokenizer (a
`TextVectorization` layer after a string input; built with `preprocessor=None` or from your own encoders) is
cut there: the core takes the token ids under the name `"<modality>_token_ids"`, every other input unchanged.
Both halves share the trained layers: no weight is copied. The SavedModel keeps the whole model, strings
included.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mmkeras.export.graph import head_names, input_specs, preprocessor_of

TOKEN_IDS_SUFFIX = "_token_ids"


@dataclasses.dataclass
class SplitModel:
    """A model cut in two where string ops end (see the module docstring).

    Attributes:
        preprocessor: `MultimodalPreprocessor` (the model's own), keras.Model or None. The model's own
            preprocessor maps every raw input; a cut one maps `{text modality: strings (batch,)}` ->
            `{"<modality>_token_ids": int64 (batch, sequence_length)}`; `None` when the model reads no strings.
        core: keras.Model. The numeric rest: the token ids and every other input in, the logits out (a dict
            `{head: logits}` for several heads, like the model itself). Shares its layers with the model.
        string_inputs: tuple of str. The modalities the preprocessor turns into token ids.
    """

    preprocessor: object
    core: object
    string_inputs: tuple

    def core_inputs(self, features: dict) -> dict:
        """Raw named features (strings included) -> the core's inputs, as NumPy arrays.

        Strings pass through the preprocessor (TensorFlow); other inputs are converted to their declared dtype.
        """
        import keras

        specs = input_specs(self.core)
        result = {}
        if preprocessor_of(self.preprocessor) is not None:  # a MultimodalPreprocessor: every modality
            raw = {name: np.asarray(features[name]) for name in self.preprocessor.modalities}
            outputs = self.preprocessor(raw)
            return {name: keras.ops.convert_to_numpy(outputs[name]).astype(dtype) for name, (_, dtype) in specs.items()}
        if self.preprocessor is not None:
            import tensorflow as tf

            strings = {m: np.asarray(features[m]).astype(str) for m in self.string_inputs}
            ids = self.preprocessor({m: tf.constant(v) for m, v in strings.items()})
            result.update({k: keras.ops.convert_to_numpy(v) for k, v in ids.items()})
        for name, (_, dtype) in specs.items():
            if name not in result:
                result[name] = np.asarray(features[name]).astype(dtype)
        return result


def vectorizer_of(encoder):
    """The encoder's `TextVectorization` layer, or `None`; more than one is refused (where would we cut?)."""
    import keras

    found = [layer for layer in getattr(encoder, "layers", []) if isinstance(layer, keras.layers.TextVectorization)]
    if len(found) > 1:
        raise ValueError(f"Encoder {encoder.name!r} holds {len(found)} TextVectorization layers; expected at most "
                         f"one, right after its string input.")
    return found[0] if found else None


def split_preprocessing(model) -> SplitModel:
    """Splits a `FusionClassifier` into string preprocessing and a numeric core (see `SplitModel`).

    For a modality m whose encoder starts with `TextVectorization`, the core takes `m + "_token_ids"`
    (int64 `(batch, sequence_length)`, 0 = padding, 1 = out of vocabulary) and runs the encoder's layers after
    the vectorizer; the fusion layer and heads are the model's own, so `core(preprocessor(x)) == model(x)`.
    A model without string inputs is returned as its own core, with no preprocessor.

    Raises:
        ValueError: the model is not a `FusionClassifier`, or it uses modality dropout together with string
            inputs (its presence check reads the raw strings).
    """
    import keras

    from mmkeras.models import FusionClassifier

    preprocessor = preprocessor_of(model)
    if preprocessor is not None:  # already split: the preprocessor, and the model's numeric graph as the core
        core = keras.Model(model.input, model.output, name=f"{model.name}_core")
        core.head_names = head_names(model)  # its single output is named after the model's head in every export
        strings = tuple(name for name, spec in preprocessor.input_specs.items() if spec["dtype"] == "string")
        return SplitModel(preprocessor, core, strings)
    specs = input_specs(model)
    strings = tuple(name for name, (_, dtype) in specs.items() if dtype == "string")
    if not strings:
        return SplitModel(None, model, ())
    if not isinstance(model, FusionClassifier):
        raise ValueError(f"split_preprocessing rebuilds a FusionClassifier's graph around token ids. "
                         f"Received: {type(model).__name__}")
    if model.modality_dropout > 0:
        raise ValueError(f"A model with modality dropout checks its raw strings for emptiness; split it before "
                         f"adding modality dropout. Received: modality_dropout={model.modality_dropout}")
    pre_inputs, pre_outputs, core_inputs, features, masks = {}, {}, {}, [], []
    for modality, encoder in model.encoders.items():
        vectorizer = vectorizer_of(encoder) if modality in strings else None
        if modality in strings and vectorizer is None:
            raise ValueError(f"Input {modality!r} is a string but its encoder has no TextVectorization layer to "
                             f"cut at. Received encoder layers: {[layer.name for layer in encoder.layers]}")
        if vectorizer is not None:
            name = modality + TOKEN_IDS_SUFFIX
            pre_inputs[modality] = keras.Input(shape=(), dtype="string", name=modality)  # (batch,)
            pre_outputs[name] = vectorizer(pre_inputs[modality])  # (batch, sequence_length) int64
            numeric = keras.Model(vectorizer.output, encoder.output, name=f"{encoder.name}_core")
            core_inputs[name] = keras.Input(shape=pre_outputs[name].shape[1:], dtype=pre_outputs[name].dtype,
                                            name=name)
            z = numeric(core_inputs[name])
        else:
            shape, dtype = specs[modality]
            core_inputs[modality] = keras.Input(shape=shape[1:], dtype=dtype, name=modality)
            z = encoder(core_inputs[modality])
        if isinstance(z, dict):
            features.append(z["sequence"])  # (batch, steps, d)
            masks.append(z.get("padding_mask"))
        else:
            features.append(z)  # (batch, d)
            masks.append(None)
    fused = (model.fusion(features, padding_masks=masks) if any(m is not None for m in masks)
             else model.fusion(features))
    outputs = {head: model.get_layer(head)(fused) for head in model.head_names}  # logits, float32
    if len(outputs) == 1:
        outputs = next(iter(outputs.values()))
    preprocessor = keras.Model(pre_inputs, pre_outputs, name=f"{model.name}_preprocessor")
    core = keras.Model(core_inputs, outputs, name=f"{model.name}_core")
    core.head_names = head_names(model)
    return SplitModel(preprocessor, core, tuple(pre_inputs))
