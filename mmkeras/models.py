"""Assemble encoders, a fusion layer and classification heads into one functional model.

`build_fusion_classifier({"text": text_encoder, "image": image_encoder})` gives the concatenation model;
`build_fusion_classifier({"audio": audio_encoder})` the unimodal audio baseline: one builder for both, so the
comparison in the quickstart and notebook 05 differs only in which modalities go in.
"""

from __future__ import annotations

import keras
from keras import layers

from mmkeras.data.synthetic import INPUT_SPECS, MODALITIES, NUM_CLASSES, check_modalities
from mmkeras.encoders import build_encoder
from mmkeras.fusion import ConcatenationFusion


def _input_for(modality: str, encoder: keras.Model):
    """A `keras.Input` named after the modality, shaped like the encoder's input (or the dataset's)."""
    try:
        specs = encoder.inputs  # functional models know their input; subclassed ones may not
    except (AttributeError, ValueError):
        specs = None
    if specs:
        if len(specs) != 1:
            raise ValueError(f"encoders[{modality!r}] must take one input. Received: {len(specs)} inputs")
        shape, dtype = tuple(specs[0].shape[1:]), specs[0].dtype
    else:
        shape, dtype = INPUT_SPECS[modality]
    return keras.Input(shape=shape, dtype=dtype, name=modality)


def build_fusion_classifier(
    encoders,
    num_classes: int = NUM_CLASSES["label"],
    hidden_dim: int = 64,
    dropout: float = 0.2,
    aux_heads: dict | None = None,
    name: str | None = None,
) -> keras.Model:
    """Builds `inputs -> encoder per modality -> ConcatenationFusion -> softmax head(s)`.

    With features `z_m = encoder_m(x_m)`: `H = ReLU(W [z_1; ...; z_M] + b)` and
    `p(y | x) = softmax(V H + c)`.

    Args:
        encoders: dict `{modality: keras.Model}` (each model's single input is named after the modality), or
            a list of modality names, which builds each modality's default encoder.
        num_classes: int. Classes of the main `"label"` head. Defaults to `8`.
        hidden_dim: int. Size of the fused representation `H`. Defaults to `64`.
        dropout: float. Dropout on the concatenated features. Defaults to `0.2`.
        aux_heads: dict or None. Extra heads `{name: num_classes}`, e.g. `{"shape": 2, "color": 2}`; the
            model then returns a dict of outputs named `"label"` and each auxiliary name.
        name: str or None. The model's name; defaults to the modalities joined by `"_"`.

    Returns:
        A functional `keras.Model` whose inputs are a dict keyed by modality and whose output is the
        `(batch, num_classes)` class probabilities `"label"` (or a dict of them with `aux_heads`).

    Example:
    >>> model = build_fusion_classifier(["image", "audio"])
    >>> sorted(model.input)
    ['audio', 'image']
    """
    if isinstance(encoders, (list, tuple, str)):
        encoders = {m: build_encoder(m) for m in check_modalities(encoders)}
    if not isinstance(encoders, dict) or not encoders:
        raise ValueError(f"`encoders` must be a non-empty dict {{modality: model}}. Received: encoders={encoders!r}")
    check_modalities(list(encoders))
    for modality, encoder in encoders.items():
        if not isinstance(encoder, keras.Model):
            raise ValueError(f"encoders[{modality!r}] must be a keras.Model. Received: {encoder!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"`num_classes` must be an int >= 2. Received: num_classes={num_classes!r}")
    heads = {"label": num_classes} | dict(aux_heads or {})
    for classes in heads.values():
        if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
            raise ValueError(f"`aux_heads` values must be ints >= 2. Received: aux_heads={aux_heads!r}")

    order = [m for m in MODALITIES if m in encoders]
    inputs, features = {}, []
    for modality in order:
        inputs[modality] = _input_for(modality, encoders[modality])
        features.append(encoders[modality](inputs[modality]))  # (batch, d_m)
    fused = ConcatenationFusion(hidden_dim, dropout=dropout, name="fusion")(features)  # (batch, hidden_dim)
    outputs = {h: layers.Dense(c, activation="softmax", name=h)(fused) for h, c in heads.items()}
    if not aux_heads:
        outputs = outputs["label"]
    return keras.Model(inputs, outputs, name=name or "_".join(order))
