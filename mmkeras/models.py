"""Task models: encoders + a fusion layer + named heads that return logits.

`FusionClassifier` is built the way keras-hub builds its task models (`TextClassifier` around a backbone):
the pieces are passed in, the model is a functional graph over them, the heads return logits in float32, and
`compile()` has defaults that know it (`from_logits=True`, one loss and one accuracy per head).

    inputs {modality: x_m} -> encoder_m -> z_m -> fusion([z_1, ..., z_M]) -> H -> head_k(H) = logits_k

`build_fusion_classifier(data)` is the short form: it builds a default encoder for every modality of a
dataset (any names, any shapes) and the default concatenation fusion.
"""

from __future__ import annotations

import inspect

import keras
from keras import layers

from mmkeras._validation import check_choice, check_fraction, check_int, check_name
from mmkeras.data.schema import MultimodalData
from mmkeras.data.synthetic import SCHEMA as TOYS_SCHEMA
from mmkeras.encoders import build_encoders
from mmkeras.fusion import FUSIONS, ConcatenationFusion, ModalityDropout, ModalityPresence, get_fusion
from mmkeras.losses import UncertaintyWeighting
from mmkeras.preprocessing import build_preprocessor, check_preprocessor
from mmkeras.task import TaskModel

DEFAULT_HIDDEN_DIM = 64  # the fused width H when neither `hidden_dim` nor the fusion layer says otherwise
DEFAULT_DROPOUT = 0.2  # the default concatenation's dropout


def input_for(modality: str, encoder) -> keras.KerasTensor:
    """A `keras.Input` named after the modality, shaped like the encoder's input."""
    try:
        specs = encoder.inputs  # functional models know their input; subclassed ones do not
    except (AttributeError, ValueError):
        specs = None
    if specs:
        if len(specs) != 1:
            raise ValueError(f"encoders[{modality!r}] must take one input. Received: {len(specs)} inputs")
        shape, dtype = tuple(specs[0].shape[1:]), specs[0].dtype
    elif getattr(encoder, "input_signature", None) is not None:
        shape, dtype = encoder.input_signature
    else:
        raise ValueError(f"Cannot tell the input shape of encoders[{modality!r}] ({type(encoder).__name__}): give it "
                         "a functional graph or an `input_signature = (shape, dtype)` attribute.")
    return keras.Input(shape=shape, dtype=dtype, name=modality)


def _check_heads(heads) -> dict:
    if isinstance(heads, dict) and heads:
        return {check_name("heads key", name): check_int(f"heads[{name!r}]", classes, minimum=2)
                for name, classes in heads.items()}
    raise ValueError(f"`heads` must be a non-empty dict {{head name: number of classes}}, e.g. {{'label': 8}}. "
                     f"Received: heads={heads!r}")


def _as_loss(loss) -> keras.losses.Loss:
    """A `keras.losses.Loss` object from a name, a function or a Loss, callable as `loss(y, y_pred, weights)`."""
    loss = keras.losses.get(loss)
    return loss if isinstance(loss, keras.losses.Loss) else keras.losses.LossFunctionWrapper(loss)


def _named_fusion(fusion: str, hidden_dim, dropout):
    """A zoo fusion by name, with `hidden_dim` as its output width and `dropout` where the layer has one."""
    if fusion not in FUSIONS:
        raise ValueError(f"`fusion` must be a keras Layer or one of {sorted(FUSIONS)}. Received: fusion={fusion!r}")
    entry, kwargs = FUSIONS[fusion], {}
    if hidden_dim is not None:
        kwargs["output_dim" if "output_dim" in entry.defaults else "width"] = hidden_dim
    if dropout is not None:
        if "dropout" not in inspect.signature(entry.layer.__init__).parameters:
            raise ValueError(f"The {fusion!r} fusion ({entry.layer.__name__}) has no dropout; leave `dropout` unset. "
                             f"Received: dropout={dropout}")
        kwargs["dropout"] = dropout
    return get_fusion(fusion, **kwargs)


@keras.saving.register_keras_serializable(package="mmkeras")
class FusionClassifier(TaskModel):
    """A multimodal classifier: one encoder per modality, a fusion layer, and one logits head per label.

    For features `z_m = encoder_m(x_m)` (vectors, or sequences with their padding masks),
    `H = fusion([z_1, ..., z_M])` and, for every head k, `logits_k = V_k H + c_k`, so that
    `p_k(y | x) = softmax(logits_k)`. The heads compute in float32 even under a `mixed_float16` policy.

    Args:
        encoders: dict `{modality: keras.Model}`. Each model takes one input (named after its modality in
            this model) and returns `(batch, d)`, or `{"sequence": (batch, steps, d), "padding_mask": ...}`.
        heads: dict `{name: num_classes}`, e.g. `{"label": 5}`. Required: the model cannot guess your classes
            (`FusionClassifier.from_data(data)` reads them from a dataset's schema).
        fusion: keras Layer, str or None. A fusion layer following `mmkeras.fusion.base`'s contract, or a
            name from `mmkeras.fusion.FUSIONS` (`"gated"`, `"transformer"`, ...). `None` builds
            `ConcatenationFusion(hidden_dim, dropout=dropout)`. Defaults to `None`.
        hidden_dim: int or None. Width of the fused representation H: the output size of the default or
            named fusion (its `output_dim` or `width`). `None`: `64`. Not allowed beside a fusion layer object
            (give the layer its size).
        dropout: float or None. Dropout of the default or named fusion. `None`: `0.2` for the default
            concatenation, the zoo's default for a named fusion. A named fusion without dropout refuses a value.
        modality_dropout: float. While training, replace each modality's features by zeros with this
            probability (`mmkeras.fusion.ModalityDropout`), so that the model copes with a missing one. Such a
            model also reads an all-zero input or an empty caption as missing and gives it zero features at
            test time (`mmkeras.fusion.ModalityPresence`). Defaults to `0.0`.
        loss_weighting: None or `"uncertainty"`. With several heads, `"uncertainty"` learns one weight per
            head (`mmkeras.losses.UncertaintyWeighting`: `sum_i exp(-s_i) L_i / 2 + s_i / 2`) instead of the
            fixed `loss_weights` of `compile`. Defaults to `None`.
        preprocessor: `mmkeras.preprocessing.MultimodalPreprocessor` or None. Turns raw inputs (captions,
            waveforms, 0-255 pixels) into what the encoders read; `fit`, `evaluate` and `predict` map it over
            the data (keras-hub's `Task`), while `model(x)` takes the preprocessed numbers. `None`: the encoders
            read the raw inputs themselves. `from_data` builds one. Defaults to `None`.
        **kwargs: passed on to `keras.Model` (e.g. `name`).

    Outputs: the logits `(batch, num_classes)` of the single head, or a dict `{head: logits}` for several.

    Example:
    >>> from mmkeras.encoders import build_audio_encoder, build_image_encoder
    >>> model = FusionClassifier({"image": build_image_encoder(), "audio": build_audio_encoder()},
    ...                          heads={"label": 8, "shape": 2})
    >>> sorted(model.output)
    ['label', 'shape']
    >>> model.compile()  # Adam, cross-entropy on logits and accuracy for every head
    """

    def __init__(self, encoders, heads, fusion=None, hidden_dim=None, dropout=None, modality_dropout=0.0,
                 loss_weighting=None, preprocessor=None, **kwargs):
        if not isinstance(encoders, dict) or not encoders:
            raise ValueError(f"`encoders` must be a non-empty dict {{modality: keras.Model}}. "
                             f"Received: encoders={encoders!r}")
        for modality, encoder in encoders.items():
            check_name("encoders key", modality)
            if not isinstance(encoder, keras.Model):
                raise ValueError(f"encoders[{modality!r}] must be a keras.Model. Received: {encoder!r}")
        heads = _check_heads(heads)
        hidden_dim = None if hidden_dim is None else check_int("hidden_dim", hidden_dim)
        dropout = None if dropout is None else check_fraction("dropout", dropout)
        modality_dropout = check_fraction("modality_dropout", modality_dropout)
        check_choice("loss_weighting", loss_weighting, (None, "uncertainty"))
        preprocessor = check_preprocessor(preprocessor, encoders)
        if loss_weighting == "uncertainty" and len(heads) < 2:
            raise ValueError(f"loss_weighting='uncertainty' weighs several heads against each other. "
                             f"Received: heads={heads}")
        if fusion is None:
            fusion = ConcatenationFusion(DEFAULT_HIDDEN_DIM if hidden_dim is None else hidden_dim,
                                         dropout=DEFAULT_DROPOUT if dropout is None else dropout, name="fusion")
        elif isinstance(fusion, str):
            fusion = _named_fusion(fusion, hidden_dim, dropout)
        elif not isinstance(fusion, keras.layers.Layer):
            raise ValueError(f"`fusion` must be None, a keras Layer or one of {sorted(FUSIONS)}. "
                             f"Received: fusion={fusion!r}")
        elif hidden_dim is not None or dropout is not None:
            raise ValueError(f"With a fusion layer object, set its size and dropout on the layer itself. "
                             f"Received: hidden_dim={hidden_dim}, dropout={dropout} beside {type(fusion).__name__}")

        # === Functional graph ===
        inputs, features, masks = {}, [], []
        for modality, encoder in encoders.items():
            inputs[modality] = input_for(modality, encoder)
            z = encoder(inputs[modality])  # (batch, d_m), or a sequence with its padding mask
            if isinstance(z, dict):
                features.append(z["sequence"])  # (batch, steps, d_m)
                masks.append(z.get("padding_mask"))  # (batch, steps)
            else:
                features.append(z)
                masks.append(None)
        if modality_dropout > 0:  # a removed input (zeros, "") reaches the fusion as zero features, as in training
            presence = [ModalityPresence(name=f"{modality}_present")(inputs[modality]) for modality in encoders]
            features = ModalityDropout(modality_dropout, name="modality_dropout")(features, presence=presence)
        fused = fusion(features, padding_masks=masks) if any(m is not None for m in masks) else fusion(features)
        head_layers = {name: layers.Dense(classes, dtype="float32", name=name) for name, classes in heads.items()}
        outputs = {name: head(fused) for name, head in head_layers.items()}  # logits, float32
        if len(outputs) == 1:
            outputs = next(iter(outputs.values()))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.preprocessor = preprocessor
        self.encoders = dict(encoders)
        self.fusion = fusion
        self.heads = heads
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.modality_dropout = modality_dropout
        self.loss_weighting = loss_weighting
        self.loss_weighting_layer = None
        self.head_losses = None  # with uncertainty weighting: {head: keras Loss}, set by compile()
        if loss_weighting == "uncertainty":
            self.loss_weighting_layer = UncertaintyWeighting(list(heads), name="uncertainty_weighting")
            self.head_loss_trackers = [keras.metrics.Mean(name=f"{head}_loss") for head in heads]

    @classmethod
    def from_data(cls, data, modalities=None, num_classes=None, aux_heads=None, fusion=None, hidden_dim=None,
                  dropout=None, modality_dropout=0.0, loss_weighting=None, name=None, preprocessor="auto",
                  **encoder_overrides):
        """A classifier for a dataset: default encoders for its modalities, heads from its schema's labels.

        By default the model is split the keras-hub way: a `MultimodalPreprocessor` (`model.preprocessor`:
        captions -> token ids, waveforms -> log-mel, 0-255 pixels -> [0, 1]) and numeric encoders; `fit`,
        `evaluate` and `predict` take the raw data and preprocess it in `tf.data`.

        Args:
            data: MultimodalData. The training split: its schema gives modality names, kinds, shapes and the
                first label's classes; its captions teach a text encoder its vocabulary.
            modalities: list of str or None. Which modalities to use (a unimodal baseline is `["image"]`).
            num_classes: int or None. Classes of the main head; `None` takes the schema's first label.
            aux_heads: dict or None. Extra heads `{name: num_classes}`.
            fusion, hidden_dim, dropout, modality_dropout, loss_weighting: as in `FusionClassifier`.
            name: str or None. Defaults to the modalities joined by `"_"`.
            preprocessor: `"auto"` or None. `"auto"` builds the preprocessor and numeric encoders; `None` puts
                the preprocessing inside the encoders (the model reads raw inputs in every call). Defaults to
                `"auto"`.
            **encoder_overrides: per-modality arguments of the default encoders, e.g. `audio={"kind": "cnn"}`.

        Example:
        >>> import numpy as np
        >>> from mmkeras.data import MultimodalData
        >>> data = MultimodalData({"cam": np.zeros((8, 16, 16, 3), "float32")}, {"label": np.arange(8) % 3})
        >>> FusionClassifier.from_data(data).heads
        {'label': 3}
        """
        if not isinstance(data, MultimodalData):
            raise ValueError(f"`data` must be a MultimodalData (the training split). Received: {type(data).__name__}")
        if not data.schema.labels:
            raise ValueError("The data has no labels, so the classes are unknown: give it labels, e.g. "
                             "MultimodalData(features, {'label': y}).")
        main = data.schema.labels[0]
        heads = {main.name: main.num_classes if num_classes is None else num_classes} | dict(aux_heads or {})
        check_choice("preprocessor", preprocessor, ("auto", None))
        split = preprocessor == "auto"
        encoders = build_encoders(data, modalities, preprocessed=split, **encoder_overrides)
        preprocessor = build_preprocessor(data, modalities, **encoder_overrides) if split else None
        return cls(encoders, heads=heads, fusion=fusion, hidden_dim=hidden_dim, dropout=dropout,
                   modality_dropout=modality_dropout, loss_weighting=loss_weighting, preprocessor=preprocessor,
                   name=name or "_".join(encoders))

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.encoders)

    @property
    def head_names(self) -> tuple[str, ...]:
        return tuple(self.heads)

    def label_keys(self):
        """What `mmkeras.data.to_dataset(label_keys=...)` must yield for this model: one name, or a tuple."""
        return self.head_names[0] if len(self.heads) == 1 else self.head_names

    def compile(self, optimizer="auto", loss="auto", metrics="auto", loss_weights=None, **kwargs):
        """Configures training, with defaults that know the heads return logits.

        Args:
            optimizer: `"auto"` (Adam with step size 5e-3) or any Keras optimizer.
            loss: `"auto"` (sparse categorical cross-entropy on logits, `-log softmax(logits)[y]`, for every
                head) or any Keras loss (a dict per head for several).
            metrics: `"auto"` (accuracy for every head) or any Keras metrics.
            loss_weights: None or dict `{head: weight}`: the total loss is `sum_k w_k L_k`. Not with
                `loss_weighting="uncertainty"`, which learns the weights instead.
            **kwargs: passed on to `keras.Model.compile` (e.g. `steps_per_execution`).
        """
        single = len(self.heads) == 1
        uncertainty = self.loss_weighting_layer is not None
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(5e-3)
        if loss == "auto":
            def cross_entropy():
                return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

            loss = cross_entropy() if single else {name: cross_entropy() for name in self.heads}
        if uncertainty:
            if loss_weights is not None:
                raise ValueError(f"loss_weighting='uncertainty' learns the weight of every head, so fixed "
                                 f"`loss_weights` would be ignored: drop them. Received: loss_weights={loss_weights!r}")
            if not isinstance(loss, dict):  # one loss for every head
                loss = {name: loss for name in self.heads}
            if set(loss) != set(self.heads):
                raise ValueError(f"`loss` must have one entry per head {self.head_names}. "
                                 f"Received: {sorted(loss)}")
            self.head_losses = {name: _as_loss(loss[name]) for name in self.heads}
        if metrics == "auto":
            def accuracy():
                return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

            metrics = accuracy() if single else {name: accuracy() for name in self.heads}
        if loss_weights is not None:
            if not isinstance(loss_weights, dict) or set(loss_weights) - set(self.heads):
                raise ValueError(f"`loss_weights` must be a dict keyed by head names {self.head_names}. "
                                 f"Received: loss_weights={loss_weights!r}")
            loss_weights = {name: float(loss_weights.get(name, 1.0)) for name in self.heads}
            if single:
                loss_weights = next(iter(loss_weights.values()))
        if uncertainty:  # compute_loss weighs the heads itself: Keras gets no loss of its own to add up
            super().compile(optimizer=optimizer, loss=None, metrics=metrics, **kwargs)
        else:
            super().compile(optimizer=optimizer, loss=loss, metrics=metrics, loss_weights=loss_weights, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss; with `loss_weighting="uncertainty"`, `sum_i exp(-s_i) L_i / 2 + s_i / 2`.

        With uncertainty weighting every head's loss `L_i` is computed once, tracked as `<head>_loss`, and
        weighted by the `UncertaintyWeighting` layer; regularization losses are added as usual.
        """
        if self.loss_weighting_layer is None:
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        per_head = {head: self.head_losses[head](y[head], y_pred[head], sample_weight) for head in self.heads}
        for tracker, head in zip(self.head_loss_trackers, self.heads):
            tracker.update_state(per_head[head])
        total = self.loss_weighting_layer(per_head)
        if self.losses:
            total = total + keras.ops.sum(self.losses)
        return total

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None and self.head_losses is not None:  # the per-head losses compute_loss uses
            config["loss"] = {head: keras.saving.serialize_keras_object(loss)
                              for head, loss in self.head_losses.items()}
        return config

    def get_config(self):
        # Like keras-hub's tasks: the constructor's arguments, not the functional graph.
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoders": {m: keras.saving.serialize_keras_object(e) for m, e in self.encoders.items()},
            "heads": dict(self.heads),
            "fusion": keras.saving.serialize_keras_object(self.fusion),
            "hidden_dim": self.hidden_dim,
            "dropout": self.dropout,
            "modality_dropout": self.modality_dropout,
            "loss_weighting": self.loss_weighting,
            "preprocessor": None if self.preprocessor is None else keras.saving.serialize_keras_object(
                self.preprocessor),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoders"] = {m: keras.saving.deserialize_keras_object(e) for m, e in config["encoders"].items()}
        if config.get("preprocessor") is not None:
            config["preprocessor"] = keras.saving.deserialize_keras_object(config["preprocessor"])
        config["fusion"] = keras.saving.deserialize_keras_object(config["fusion"])
        config.pop("hidden_dim", None), config.pop("dropout", None)  # already inside the fusion layer's config
        return cls(**config)


def build_fusion_classifier(
    encoders,
    num_classes: int | None = None,
    hidden_dim: int | None = None,
    dropout: float | None = None,
    aux_heads: dict | None = None,
    fusion=None,
    modality_dropout: float = 0.0,
    name: str | None = None,
    modalities=None,
    preprocessor="auto",
    **encoder_overrides,
) -> FusionClassifier:
    """The short form: default encoders for a dataset's modalities, a fusion, logits heads.

    Args:
        encoders: what to encode. A `MultimodalData` (the training split: see `FusionClassifier.from_data`),
            a list of modality names of the course's moving toys (`["image", "audio"]`: their 8 classes), or a
            dict `{modality: keras.Model}` of your own encoders (then `num_classes` is required).
        num_classes: int or None. Classes of the main head. `None` takes the schema's first label (with data
            or toy names); your own encoders need it.
        hidden_dim: int or None. Width of the fused representation `H` (see `FusionClassifier`). `None`: 64.
        dropout: float or None. Dropout of the fusion (see `FusionClassifier`). `None`: the fusion's default.
        aux_heads: dict or None. Extra heads `{name: num_classes}`, e.g. `{"shape": 2, "color": 2}`.
        fusion: keras Layer, str or None. Replaces the default concatenation, e.g. `"gated"`.
        modality_dropout: float. Probability of hiding each modality while training. Defaults to `0.0`.
        name: str or None. The model's name; defaults to the modalities joined by `"_"`.
        modalities: list of str or None. With a `MultimodalData`: which of its modalities to use (a unimodal
            baseline is `modalities=["image"]`). Defaults to all of them.
        preprocessor: `"auto"`, None or a `MultimodalPreprocessor`. With data or toy names, `"auto"` builds the
            preprocessor (`model.preprocessor`) and numeric encoders, and `None` keeps the preprocessing inside
            the encoders; with your own encoders, `"auto"` means none, or pass the preprocessor they read.
            Defaults to `"auto"`.
        **encoder_overrides: per-modality arguments of the default encoders, e.g. `audio={"kind": "cnn"}`.

    Returns:
        A `FusionClassifier` whose inputs are a dict keyed by modality and whose output is the logits of the
        label head (a dict of logits with `aux_heads`).

    Example:
    >>> model = build_fusion_classifier(["image", "audio"])
    >>> sorted(model.input), model.output.shape
    (['audio', 'image'], (None, 8))
    """
    options = dict(fusion=fusion, hidden_dim=hidden_dim, dropout=dropout, modality_dropout=modality_dropout)
    if isinstance(encoders, MultimodalData):
        return FusionClassifier.from_data(encoders, modalities, num_classes, aux_heads, name=name,
                                          preprocessor=preprocessor, **options, **encoder_overrides)
    if modalities is not None:
        raise ValueError(f"`modalities` selects from a MultimodalData; with {type(encoders).__name__} `encoders`, "
                         f"list the modalities there instead. Received: modalities={modalities!r}")
    main = TOYS_SCHEMA.labels[0]
    if isinstance(encoders, (list, tuple, str)):
        check_choice("preprocessor", preprocessor, ("auto", None))
        names = TOYS_SCHEMA.select_modalities(encoders)
        split = preprocessor == "auto"
        encoders = build_encoders(TOYS_SCHEMA, names, preprocessed=split, **encoder_overrides)
        preprocessor = build_preprocessor(TOYS_SCHEMA, names, **encoder_overrides) if split else None
        num_classes = main.num_classes if num_classes is None else num_classes
    elif encoder_overrides:
        raise ValueError(f"Encoder arguments apply to default encoders only; these are yours. "
                         f"Received: {sorted(encoder_overrides)}")
    elif num_classes is None:
        raise ValueError("With your own encoders, say how many classes the label has: "
                         "build_fusion_classifier(encoders, num_classes=...). Received: num_classes=None")
    if not isinstance(encoders, dict) or not encoders:
        raise ValueError(f"`encoders` must be a MultimodalData, a list of modality names or a non-empty dict "
                         f"{{modality: model}}. Received: encoders={encoders!r}")
    elif preprocessor == "auto":
        preprocessor = None  # your encoders read what you give them
    heads = {main.name: num_classes} | dict(aux_heads or {})
    return FusionClassifier(encoders, heads=heads, name=name or "_".join(encoders), preprocessor=preprocessor,
                            **options)
