"""Pretrain, then transfer (预训练与迁移): the course's own pretrained presets, and fine-tuning with few labels.

No machine of this course can download real pretrained weights, so it pretrains its own, honestly, on data
that carries no labels of the task it is later fine-tuned on:

* text: a tiny BERT pretrained by masked language modelling (掩码语言模型, MLM) on captions
  (`build_masked_lm`, `pretrain_masked_lm`), with keras-hub's `BertBackbone`, `BertMaskedLM` and
  `BertMaskedLMPreprocessor`;
* images: a small CNN, written as a keras-hub `Backbone` (`ConvBackbone`), pretrained on a pretext task
  (代理任务) over an unlabelled pool of captioned scenes: predicting the words of the caption
  (`caption_word_targets`, weak supervision from alt-text, like web-scale image-text pretraining) or the
  rotation of the image (`rotation_pretext`).

Both are saved with `save_to_preset(folder)` and loaded back with the same `from_preset` call that a user with
internet points at a real preset name (`keras_hub.models.BertBackbone.from_preset("bert_tiny_en_uncased")`):
`keras_hub.models.BertBackbone.from_preset(folder)`. Then the recipe of transfer learning (迁移学习) with few
labels, `fine_tune`:

1. freeze the backbone (`freeze`) and train a new head at a high learning rate;
2. unfreeze the top layers (`unfreeze_top`) and fine-tune (微调) at a low learning rate,

against `train_from_scratch` with the same labels and the same number of epochs. `augmented_dataset` adds a
label-preserving augmentation (`label_preserving_augmentation`: flips, small rotations, shifts and zooms,
brightness and contrast, drawn anew for every image; no operation that changes an object's colour) and keras's
`MixUp` / `CutMix` to the image training.

Two traps of short runs on few labels that this module guards against, both measured in notebook 13:

* BatchNorm's moving statistics lag: with Keras's default momentum 0.99 a run of ~200 updates keeps
  `0.99^200 = 13 %` of the initial mean 0 / variance 1, and a model that fits its training batches can predict
  one class in inference mode. `ConvBackbone` uses momentum 0.9 (as keras-hub's ResNet does), and
  `reestimate_batch_norm` recomputes the statistics after training ("precise BatchNorm").
* `keras.layers.RandAugment` draws its operations once per call (on a batch, the same two for every image) and
  5 of its 11 operations change colours (solarize, posterize, colour degeneration, equalize, auto-contrast):
  wrong for a task whose label includes the colour.

TensorFlow-backend code: the string tokenizers and `tf.data` need TensorFlow, imported inside the functions.
"""

from __future__ import annotations

import warnings

import keras
import keras_hub
import numpy as np
from keras import layers

from mmkeras._validation import check_bool, check_choice, check_fraction, check_int, check_number, check_words
from mmkeras.config import is_smoke

MASK_SELECTION_RATE = 0.15
"""The share of tokens BERT's MLM picks as prediction targets."""
MASK_TOKEN_RATE = 0.8
"""Of the picked tokens, the share replaced by `[MASK]`."""
RANDOM_TOKEN_RATE = 0.1
"""Of the picked tokens, the share replaced by a random token (the remaining 10 % are kept unchanged)."""
PRETEXTS = ("caption_words", "rotation")
MIXES = (None, "mixup", "cutmix")


# ----------------------------------------------------------------------------------------------------------------
# Text: masked language modelling
# ----------------------------------------------------------------------------------------------------------------


def caption_corpus(toy_size: int = 4000, scene_size: int = 4000, seed: int = 1) -> np.ndarray:
    """An unlabelled pretraining corpus: captions of the moving toys and of the captioned scenes, no labels.

    Drawn from seed `seed` (the notebooks fine-tune and test on splits of seed 0, so the corpus holds other
    samples); only the strings are kept.

    Args:
        toy_size: int. Moving-toy captions (`mmkeras.load_splits`, `text`). Defaults to `4000`.
        scene_size: int. Scene captions (`mmkeras.load_scene_splits`, `text`). Defaults to `4000`.
        seed: int. Seed of both generators. Defaults to `1`.

    Returns:
        A `(toy_size + scene_size,)` array of str.

    Example:
    >>> corpus = caption_corpus(3, 2)
    >>> corpus.shape, str(corpus[-1]).startswith("a ")
    ((5,), True)
    """
    from mmkeras.data import load_scene_splits, load_splits

    toy_size, scene_size = check_int("toy_size", toy_size), check_int("scene_size", scene_size)
    seed = check_int("seed", seed, minimum=0)
    toys = load_splits(toy_size, 1, 1, seed=seed)["train"].features["text"]
    scenes = load_scene_splits(scene_size, 1, 1, seed=seed)["train"].features["text"]
    return np.concatenate([toys, scenes]).astype(str)


def build_masked_lm(
    vocabulary,
    sequence_length: int = 16,
    num_layers: int = 2,
    num_heads: int = 2,
    hidden_dim: int = 64,
    intermediate_dim: int = 128,
    dropout: float = 0.1,
    mask_selection_rate: float = MASK_SELECTION_RATE,
    mask_token_rate: float = MASK_TOKEN_RATE,
    random_token_rate: float = RANDOM_TOKEN_RATE,
    mask_selection_length: int = 4,
) -> keras_hub.models.BertMaskedLM:
    """A tiny BERT with keras-hub's masked-LM head and preprocessor, on a word vocabulary.

    The preprocessor picks each token with probability `mask_selection_rate` (at most `mask_selection_length`
    per caption) and replaces a picked token by `[MASK]` with probability `mask_token_rate`, by a random token
    with probability `random_token_rate`, and keeps it otherwise (BERT's 15 % and 80/10/10). The loss is the
    cross-entropy of the original tokens at the picked positions `M`:

        L_MLM = - 1/|M| sum_{i in M} log p(x_i | x_masked)

    Args:
        vocabulary: list of str. The words (`mmkeras.encoders.learn_vocabulary(corpus)`); BERT's special
            tokens `[PAD] [UNK] [CLS] [SEP] [MASK]` are put first.
        sequence_length: int. Token ids per caption, `[CLS]` and `[SEP]` included. Defaults to `16`.
        num_layers, num_heads, hidden_dim, intermediate_dim: int. The Transformer's sizes. Default to `2`,
            `2`, `64`, `128`.
        dropout: float. Dropout rate in [0, 1). Defaults to `0.1`.
        mask_selection_rate, mask_token_rate, random_token_rate: float. The 15 % and 80/10/10 above.
        mask_selection_length: int. Most picked tokens per caption. Defaults to `4`.

    Returns:
        A `keras_hub.models.BertMaskedLM` with its `BertMaskedLMPreprocessor`: `fit` takes raw strings.

    Example:
    >>> masked_lm = build_masked_lm(["a", "red", "toy"], num_layers=1, hidden_dim=16, intermediate_dim=32)
    >>> masked_lm.backbone.vocabulary_size, masked_lm.preprocessor.mask_selection_rate
    (8, 0.15)
    """
    from mmkeras.encoders.text import bert_vocabulary

    words = bert_vocabulary(check_words("vocabulary", vocabulary))
    sequence_length = check_int("sequence_length", sequence_length, minimum=3)
    sizes = {k: check_int(k, v) for k, v in dict(num_layers=num_layers, num_heads=num_heads, hidden_dim=hidden_dim,
                                                   intermediate_dim=intermediate_dim).items()}
    if sizes["hidden_dim"] % sizes["num_heads"]:
        raise ValueError(f"`hidden_dim` must be a multiple of `num_heads`. Received: hidden_dim={hidden_dim}, "
                         f"num_heads={num_heads}")
    check_fraction("dropout", dropout)
    rates = {k: check_number(k, v, low=0, high=1) for k, v in dict(
        mask_selection_rate=mask_selection_rate, mask_token_rate=mask_token_rate,
        random_token_rate=random_token_rate).items()}
    if rates["mask_selection_rate"] == 0:
        raise ValueError("`mask_selection_rate` must be > 0: with nothing masked there is nothing to predict. "
                         f"Received: mask_selection_rate={mask_selection_rate}")
    if rates["mask_token_rate"] + rates["random_token_rate"] > 1:
        raise ValueError("`mask_token_rate + random_token_rate` must be <= 1 (the rest is kept unchanged). "
                         f"Received: mask_token_rate={mask_token_rate}, random_token_rate={random_token_rate}")
    tokenizer = keras_hub.tokenizers.BertTokenizer(vocabulary=words, lowercase=True)
    preprocessor = keras_hub.models.BertMaskedLMPreprocessor(
        tokenizer, sequence_length=sequence_length, mask_selection_length=check_int(
            "mask_selection_length", mask_selection_length), **rates)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(words), max_sequence_length=sequence_length,
                                             dropout=dropout, **sizes)
    return keras_hub.models.BertMaskedLM(backbone, preprocessor)


def pretrain_masked_lm(masked_lm, texts, epochs: int = 10, batch_size: int = 128, learning_rate: float = 2e-3,
                       validation_texts=None, verbose: int = 0, seed: int = 0) -> keras.callbacks.History:
    """Pretrains a `BertMaskedLM` on raw strings with AdamW; returns the `History` (loss = `L_MLM`).

    Every epoch, the captions are shuffled (NumPy, from `seed`) and masked anew, so every epoch asks different
    questions of the same captions. The masks are drawn eagerly, once per epoch, by the task's preprocessor:
    TensorFlow's random ops then follow its global seed (`mmkeras.seed_everything`), so a run is repeatable.
    (Inside a `tf.data` map, as keras-hub's own `fit` would apply the preprocessor, the masking ops draw
    differently on every run, so the pretrained BERT would differ too; measured there on the course's captions,
    they also picked 23 % of the tokens instead of 15 %.) The reported accuracy is over the masked
    positions only (`sparse_categorical_accuracy`, weighted by the mask). Validation texts, when given, are
    masked once, so every epoch is scored on the same questions.

    Example:
    >>> masked_lm = build_masked_lm(["a", "red", "toy"], num_layers=1, hidden_dim=16, intermediate_dim=32)
    >>> history = pretrain_masked_lm(masked_lm, ["a red toy"] * 8, epochs=2, batch_size=8)
    >>> sorted(history.history), len(history.history["loss"])
    (['loss', 'sparse_categorical_accuracy'], 2)
    """
    import tensorflow as tf

    texts = _strings("texts", texts)
    batch_size = check_int("batch_size", batch_size)
    epochs = check_int("epochs", epochs)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    masked_lm.compile(
        optimizer=keras.optimizers.AdamW(check_number("learning_rate", learning_rate, low=0, low_inclusive=False),
                                         weight_decay=0.01),
        weighted_metrics=["sparse_categorical_accuracy"],
        run_eagerly=is_smoke(),  # smoke mode: a few batches, cheaper than tracing (see fit_classifier)
    )
    preprocessor = masked_lm.preprocessor
    validation = None
    if validation_texts is not None:
        masked = preprocessor(tf.constant(_strings("validation_texts", validation_texts)))  # (x, y, weights)
        validation = tf.data.Dataset.from_tensor_slices(masked).batch(batch_size)
    logs = {}
    masked_lm.preprocessor = None  # keras-hub's documented switch: the batches below are already preprocessed
    try:
        with warnings.catch_warnings():  # MLM trains no `pooled_dense` (BERT's [CLS] pooler): that is expected
            warnings.filterwarnings("ignore", message="Gradients do not exist for variables")
            for _ in range(epochs):  # one `fit` per epoch, the optimizer's state carries over
                masked = preprocessor(tf.constant(texts[rng.permutation(len(texts))]))  # new order, new masks
                train = tf.data.Dataset.from_tensor_slices(masked).batch(batch_size)
                history = masked_lm.fit(train, validation_data=validation, epochs=1, verbose=verbose, shuffle=False)
                for name, values in history.history.items():
                    logs.setdefault(name, []).extend(values)
    finally:
        masked_lm.preprocessor = preprocessor
    history.history, history.epoch = logs, list(range(epochs))
    return history


def _strings(name, texts) -> np.ndarray:
    texts = np.asarray(texts if not isinstance(texts, str) else [texts]).astype(str)
    if texts.ndim != 1 or len(texts) == 0:
        raise ValueError(f"`{name}` must be a non-empty list of strings. Received: shape={texts.shape}")
    return texts


def load_text_classifier(preset: str, num_classes: int, sequence_length: int = 16, dropout: float = 0.1):
    """A `BertTextClassifier` from a preset (a name such as `"bert_tiny_en_uncased"`, or a folder) and a new head.

    The same two keras-hub calls for a downloaded preset and for the course's own folder:
    `BertTextClassifierPreprocessor.from_preset(preset, sequence_length=...)` (the tokenizer with its
    vocabulary) and `BertTextClassifier.from_preset(preset, num_classes=..., preprocessor=...)` (the
    pretrained backbone and a new, randomly initialised head on the pooled `[CLS]` vector).
    """
    num_classes = check_int("num_classes", num_classes, minimum=2)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        preset, sequence_length=check_int("sequence_length", sequence_length, minimum=3))
    return keras_hub.models.BertTextClassifier.from_preset(preset, num_classes=num_classes, preprocessor=preprocessor,
                                                           dropout=check_fraction("dropout", dropout))


# ----------------------------------------------------------------------------------------------------------------
# Images: a keras-hub backbone and its pretext tasks
# ----------------------------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="mmkeras")
class ConvBackbone(keras_hub.models.Backbone):
    """A small VGG-style CNN as a keras-hub `Backbone`: images in, a feature map out, savable as a preset.

    Each stage is `(Conv 3x3 -> BatchNorm -> ReLU) x 2`, then a 2x2 max-pooling between stages, so a
    `(32, 32, 3)` image gives a `(32 / 2^(S-1), 32 / 2^(S-1), filters[-1])` map.

    BatchNorm's moving statistics follow `m <- momentum * m + (1 - momentum) * batch_statistic` after every
    training step, starting from mean 0 and variance 1. After `t` steps a share `momentum^t` of that start is
    left: with Keras's default 0.99 and the ~200 steps of a few-label run that is 13 %, and the statistics also
    average over the last ~100 steps' weights, which are not the final ones. Inference then normalises with the
    wrong numbers (notebook 13 measures a CNN that predicts one class for every test image). Hence 0.9 here,
    keras-hub's `ResNetBackbone` value: the start is forgotten after ~40 steps and the average covers ~10.

    As a keras-hub backbone it has `save_to_preset(folder)` and `keras_hub.models.Backbone.from_preset(folder)`,
    and the generic `keras_hub.models.ImageClassifier(backbone, num_classes)` puts a pooling + dense head on it,
    exactly as on a `ResNetBackbone` loaded from `"resnet_18_imagenet"`.

    Args:
        image_shape: tuple of 3 ints. `(height, width, channels)`. Defaults to `(32, 32, 3)`.
        stackwise_num_filters: tuple of ints. Filters of each stage. Defaults to `(16, 32, 64)`.
        batch_norm_momentum: float in [0, 1). Momentum of the BatchNorm moving statistics. Defaults to `0.9`.
        dtype: str or `keras.DTypePolicy` or None. The layers' dtype policy.
        **kwargs: passed on to `keras_hub.models.Backbone` (e.g. `name`).

    Example:
    >>> backbone = ConvBackbone(stackwise_num_filters=(4, 8))
    >>> tuple(backbone(np.zeros((2, 32, 32, 3), "float32")).shape)
    (2, 16, 16, 8)
    """

    def __init__(self, image_shape=(32, 32, 3), stackwise_num_filters=(16, 32, 64), batch_norm_momentum=0.9,
                 dtype=None, **kwargs):
        from mmkeras._validation import check_positive_ints, check_shape

        image_shape = check_shape("image_shape", image_shape, rank=3)
        stackwise_num_filters = check_positive_ints("stackwise_num_filters", stackwise_num_filters)
        batch_norm_momentum = check_number("batch_norm_momentum", batch_norm_momentum, low=0, high=1,
                                           high_inclusive=False)
        # === Functional model ===
        images = keras.Input(shape=image_shape, name="images")  # (batch, H, W, C)
        x = images
        for i, filters in enumerate(stackwise_num_filters):
            for j in range(2):
                x = layers.Conv2D(filters, 3, padding="same", use_bias=False, dtype=dtype,
                                  name=f"stack{i}_conv{j}")(x)
                x = layers.BatchNormalization(momentum=batch_norm_momentum, dtype=dtype,
                                              name=f"stack{i}_bn{j}")(x)
                x = layers.ReLU(dtype=dtype, name=f"stack{i}_relu{j}")(x)  # (batch, h, w, filters)
            if i < len(stackwise_num_filters) - 1:
                x = layers.MaxPooling2D(2, dtype=dtype, name=f"stack{i}_pool")(x)  # (batch, h/2, w/2, filters)
        super().__init__(inputs=images, outputs=x, dtype=dtype, **kwargs)
        # === Config ===
        self.image_shape = image_shape
        self.stackwise_num_filters = stackwise_num_filters
        self.batch_norm_momentum = batch_norm_momentum

    def get_config(self):
        config = super().get_config()
        config.update({"image_shape": self.image_shape, "stackwise_num_filters": self.stackwise_num_filters,
                       "batch_norm_momentum": self.batch_norm_momentum})
        return config


def build_image_classifier(backbone, num_classes: int, dropout: float = 0.0):
    """`keras_hub.models.ImageClassifier(backbone, num_classes)`: average pooling + a dense logits head.

    Example:
    >>> classifier = build_image_classifier(ConvBackbone(stackwise_num_filters=(4, 8)), num_classes=3)
    >>> tuple(classifier(np.zeros((1, 32, 32, 3), "float32")).shape)
    (1, 3)
    """
    return keras_hub.models.ImageClassifier(backbone, num_classes=check_int("num_classes", num_classes, minimum=2),
                                            dropout=check_fraction("dropout", dropout))


def caption_word_targets(texts, vocabulary) -> np.ndarray:
    """Multi-hot targets `(n, len(vocabulary))`: `t_iw = 1` when word `w` occurs in caption `i`.

    The pretext of weakly supervised image pretraining: an image's alt-text is free, no one labelled it for the
    task to come. Words outside `vocabulary` are ignored.

    Example:
    >>> caption_word_targets(["a red toy", "a toy"], ["red", "toy"]).tolist()
    [[1.0, 1.0], [0.0, 1.0]]
    """
    vocabulary = check_words("vocabulary", vocabulary)
    index = {w: i for i, w in enumerate(vocabulary)}
    texts = _strings("texts", texts)
    targets = np.zeros((len(texts), len(vocabulary)), dtype="float32")
    for i, text in enumerate(texts):
        for word in text.lower().split():
            if word in index:
                targets[i, index[word]] = 1.0
    return targets


def rotation_pretext(images, seed: int = 0):
    """Rotates each image by `k * 90` degrees, `k` uniform in {0, 1, 2, 3}; returns `(rotated, k)`.

    The pretext of Gidaris et al. (2018): to tell the rotation, a network must find the objects and their
    orientation. It teaches nothing about shapes that look the same rotated (a circle, a square, a cross).

    Example:
    >>> rotated, k = rotation_pretext(np.arange(8, dtype="float32").reshape(2, 2, 2, 1), seed=0)
    >>> rotated.shape, k.dtype
    ((2, 2, 2, 1), dtype('int32'))
    """
    images = np.asarray(images, dtype="float32")
    if images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise ValueError(f"`images` must be square images (n, size, size, channels). Received: shape={images.shape}")
    k = np.random.default_rng(check_int("seed", seed, minimum=0)).integers(0, 4, size=len(images)).astype("int32")
    rotated = np.stack([np.rot90(image, int(r), axes=(0, 1)) for image, r in zip(images, k)])
    return rotated.astype("float32"), k


def pretrain_image_backbone(backbone, images, pretext: str = "caption_words", texts=None, vocabulary=None,
                            epochs: int = 5, batch_size: int = 64, learning_rate: float = 2e-3, seed: int = 0,
                            verbose: int = 0):
    """Pretrains `backbone` on a pretext task over unlabelled images; returns `(pretext_model, history)`.

    * `"caption_words"`: predict which words the caption contains (needs `texts` and `vocabulary`), sigmoid
      outputs and the binary cross-entropy `L = - mean_{i,w} [t_iw log s(z_iw) + (1 - t_iw) log(1 - s(z_iw))]`;
    * `"rotation"`: predict the rotation `k` (4 classes) of a rotated copy, softmax cross-entropy.

    The pretext head is thrown away afterwards; the backbone keeps what it learnt.
    """
    check_choice("pretext", pretext, PRETEXTS)
    images = np.asarray(images, dtype="float32")
    if pretext == "caption_words":
        if texts is None or vocabulary is None:
            raise ValueError("pretext='caption_words' needs `texts=` (one caption per image) and `vocabulary=`. "
                             f"Received: texts={type(texts).__name__}, vocabulary={type(vocabulary).__name__}")
        targets = caption_word_targets(texts, vocabulary)
        if len(targets) != len(images):
            raise ValueError(f"`texts` must hold one caption per image. Received: {len(targets)} captions for "
                             f"{len(images)} images")
        model = build_image_classifier(backbone, targets.shape[1])
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
        metrics = [keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")]
    else:
        images, targets = rotation_pretext(images, seed=seed)
        model = build_image_classifier(backbone, 4)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = ["accuracy"]
    model.compile(optimizer=keras.optimizers.Adam(check_number("learning_rate", learning_rate, low=0,
                                                               low_inclusive=False)), loss=loss, metrics=metrics,
                  run_eagerly=is_smoke())
    with warnings.catch_warnings():
        # keras-hub turns the arrays into a tf.data pipeline without reshuffling; the generated pool is already
        # in random order, so the batches are i.i.d. draws, only in the same order every epoch.
        warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
        history = model.fit(images, targets, epochs=check_int("epochs", epochs),
                            batch_size=check_int("batch_size", batch_size), verbose=verbose)
    return model, history


# ----------------------------------------------------------------------------------------------------------------
# Transfer: freeze, unfreeze the top, fine-tune; against training from scratch
# ----------------------------------------------------------------------------------------------------------------


def freeze(model):
    """Sets `model.trainable = False` (every layer and weight inside follows); returns the model.

    A frozen `BatchNormalization` also runs in inference mode (its moving statistics stay as pretrained).

    Example:
    >>> backbone = freeze(ConvBackbone(stackwise_num_filters=(4,)))
    >>> len(backbone.trainable_weights), len(backbone.non_trainable_weights) > 0
    (0, True)
    """
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(f"`model` must be a keras Model or Layer. Received: {type(model).__name__}")
    model.trainable = False
    return model


def weighted_layers(model) -> list:
    """The layers of `model` (first level) that own weights, in the order of the graph."""
    return [layer for layer in model.layers if layer.weights]


def unfreeze_top(backbone, num_layers: int | None = None) -> list[str]:
    """Makes the top `num_layers` weighted layers of `backbone` trainable and keeps the others frozen.

    "Weighted layers" are the backbone's first-level layers that own weights (`weighted_layers`): for a BERT,
    the embeddings, each `transformer_layer_i` and `pooled_dense`; for `ConvBackbone`, each convolution and
    batch normalization. `None` unfreezes them all.

    Returns:
        The names of the trainable layers, bottom to top.

    Example:
    >>> backbone = ConvBackbone(stackwise_num_filters=(4, 8))
    >>> unfreeze_top(backbone, 2)
    ['stack1_conv1', 'stack1_bn1']
    """
    candidates = weighted_layers(backbone)
    if num_layers is not None:
        num_layers = check_int("num_layers", num_layers)
        if num_layers > len(candidates):
            raise ValueError(f"`num_layers` must be at most the {len(candidates)} weighted layers of "
                             f"{backbone.name!r}. Received: num_layers={num_layers}")
    backbone.trainable = True
    keep_frozen = 0 if num_layers is None else len(candidates) - num_layers
    for i, layer in enumerate(candidates):
        layer.trainable = i >= keep_frozen
    return [layer.name for layer in candidates[keep_frozen:]]


def trainable_layers(model) -> dict[str, bool]:
    """`{layer name: trainable}` for the weighted layers of `model` (what `freeze` / `unfreeze_top` set)."""
    return {layer.name: bool(layer.trainable) for layer in weighted_layers(model)}


def label_preserving_augmentation(rotation: float = 0.05, translation: float = 0.1, zoom: float = 0.1,
                                  brightness: float = 0.1, contrast: float = 0.2, flips: bool = True,
                                  seed: int = 0) -> keras.Sequential:
    """Augmentation that keeps the toys' label (shape x colour): plain `keras.layers`, drawn anew for every image.

    Every layer below draws its own random parameters for each image of a batch (a flip or not, an angle, a
    shift, a zoom, a brightness offset, a contrast factor), so two images of one batch get different
    transforms. None of them changes which colour an object has: flips, rotations, shifts and zooms move
    pixels; brightness adds the same offset to the three channels; contrast scales each channel around its
    mean. Left out on purpose: the colour operations of `keras.layers.RandAugment` (solarization,
    posterization, colour degeneration, equalization, auto-contrast), which can turn a red object blue, and
    `RandAugment` itself, which draws its operations once per call (on a batch, the same two for every image).
    Empty borders are filled with the nearest pixel (the gray background), not by reflecting the object.

    Args:
        rotation: float. Largest rotation, a fraction of a full turn (`0.05` = 18 degrees). Defaults to `0.05`.
        translation: float. Largest shift, a fraction of the height / width. Defaults to `0.1`.
        zoom: float. Largest zoom in or out, a fraction of the size. Defaults to `0.1`.
        brightness: float. Largest offset added to all channels, on the [0, 1] range. Defaults to `0.1`.
        contrast: float. Contrast factor drawn in `[1 - contrast, 1 + contrast]`. Defaults to `0.2`.
        flips: bool. Random horizontal and vertical flips. A flip changes a label that holds a position or a
            direction ("left"): turn them off for such labels. Defaults to `True`.
        seed: int. Seed of the random draws. Defaults to `0`.

    A factor of `0` leaves its layer out.

    Example:
    >>> augmenter = label_preserving_augmentation(seed=0)
    >>> images = np.repeat(np.random.default_rng(0).random((1, 16, 16, 3), dtype="float32"), 4, axis=0)
    >>> out = augmenter(images, training=True).numpy()
    >>> len({image.tobytes() for image in out})  # four copies of one image, four different transforms
    4
    """
    check_bool("flips", flips)
    seed = check_int("seed", seed, minimum=0)
    factors = {name: check_number(name, value, low=0, high=1) for name, value in dict(
        rotation=rotation, translation=translation, zoom=zoom, brightness=brightness, contrast=contrast).items()}
    steps = []
    if flips:
        steps += [layers.RandomFlip("horizontal", seed=seed), layers.RandomFlip("vertical", seed=seed + 1)]
    if factors["rotation"]:
        steps.append(layers.RandomRotation(factors["rotation"], fill_mode="nearest", seed=seed + 2))
    if factors["translation"]:
        steps.append(layers.RandomTranslation(factors["translation"], factors["translation"], fill_mode="nearest",
                                              seed=seed + 3))
    if factors["zoom"]:
        steps.append(layers.RandomZoom(factors["zoom"], fill_mode="nearest", seed=seed + 4))
    if factors["brightness"]:
        steps.append(layers.RandomBrightness(factors["brightness"], value_range=(0, 1), seed=seed + 5))
    if factors["contrast"]:
        steps.append(layers.RandomContrast(factors["contrast"], value_range=(0, 1), seed=seed + 6))
    return keras.Sequential(steps, name="label_preserving_augmentation")


def augmented_dataset(images, labels, num_classes: int, batch_size: int = 32, augment: bool = True,
                      mix: str | None = "mixup", shuffle: bool = True, seed: int = 0):
    """A `tf.data` pipeline of augmented image batches with one-hot (or mixed) labels.

    `augment=True` applies `label_preserving_augmentation(seed=seed)` (flips, rotations, shifts, zooms,
    brightness, contrast: each image its own draw, no colour change); MixUp blends two samples,
    `x = l x_i + (1 - l) x_j`, `y = l y_i + (1 - l) y_j` with `l ~ Beta(a, a)`; CutMix pastes a box of `x_j`
    into `x_i` and mixes the labels by the box's area. All run in `tf.data` on the fly, so every epoch sees new
    images, and in order (no parallel calls), so the same `seed` gives the same images. Train with
    `CategoricalCrossentropy(from_logits=True)`.

    Args:
        images: float array `(n, h, w, c)` in [0, 1].
        labels: int array `(n,)`.
        num_classes: int. For the one-hot labels.
        batch_size: int. Defaults to `32`.
        augment: bool. Apply `label_preserving_augmentation`. Defaults to `True`.
        mix: str or None. `"mixup"`, `"cutmix"` or `None`. Defaults to `"mixup"`.
        shuffle: bool. Reshuffle every epoch. Defaults to `True`.
        seed: int. Seed of the shuffling and the augmentations. Defaults to `0`.

    Example:
    >>> ds = augmented_dataset(np.zeros((4, 8, 8, 3), "float32"), np.array([0, 1, 0, 1]), 2, batch_size=4)
    >>> [tuple(t.shape) for t in next(iter(ds))]
    [(4, 8, 8, 3), (4, 2)]
    """
    import tensorflow as tf

    check_bool("augment", augment)
    check_choice("mix", mix, MIXES)
    num_classes = check_int("num_classes", num_classes, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    images = np.asarray(images, dtype="float32")
    labels = np.asarray(labels).astype("int32")
    if images.ndim != 4 or labels.shape != (len(images),):
        raise ValueError(f"Expected images (n, h, w, c) and labels (n,). Received: {images.shape} and {labels.shape}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"`labels` must lie in [0, {num_classes}). Received: min={labels.min()}, max={labels.max()}")
    augmenter = label_preserving_augmentation(seed=seed) if augment else None
    mixer = {"mixup": lambda: layers.MixUp(alpha=0.2, seed=seed), "cutmix": lambda: layers.CutMix(seed=seed),
             None: lambda: None}[mix]()

    ds = tf.data.Dataset.from_tensor_slices((images, tf.one_hot(labels, num_classes)))
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(check_int("batch_size", batch_size))

    def transform(x, y):  # x: (batch, h, w, c); y: (batch, classes)
        if augmenter is not None:
            x = tf.clip_by_value(augmenter(x, training=True), 0.0, 1.0)  # per-image draws
        if mixer is not None:
            mixed = mixer({"images": x, "labels": y}, training=True)
            x, y = mixed["images"], mixed["labels"]
        return x, y

    # Sequential map: the layers' seed generators advance in order, so a seed gives the same images every run.
    return ds.map(transform).prefetch(tf.data.AUTOTUNE)


class PreciseBatchNorm(keras.callbacks.Callback):
    """Re-estimates the BatchNorm statistics on `images` before every validation and at the end of `fit`.

    With it, the validation curve and the final model use the statistics of the current weights on the
    training images (`reestimate_batch_norm`), not exponential averages that lag behind the weights.

    Args:
        images: array `(n, ...)`. Training inputs, without augmentation.
        batch_size: int. Images per forward pass. Defaults to `256`.
    """

    def __init__(self, images, batch_size: int = 256):
        super().__init__()
        self.images = np.asarray(images, dtype="float32")
        self.batch_size = check_int("batch_size", batch_size)

    def on_test_begin(self, logs=None):
        reestimate_batch_norm(self.model, self.images, self.batch_size)

    def on_train_end(self, logs=None):
        reestimate_batch_norm(self.model, self.images, self.batch_size)


def _fit(model, train, validation, epochs, learning_rate, batch_size, one_hot, seed=0, batch_norm_images=None):
    import tensorflow as tf

    loss = (keras.losses.CategoricalCrossentropy(from_logits=True) if one_hot
            else keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss,
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy") if one_hot else "accuracy"],
                  run_eagerly=is_smoke())
    preprocessor = getattr(model, "preprocessor", None)

    def arrays(data):  # (x, y) -> tensors; a keras-hub preprocessor (tokenizer) runs once here, not every epoch
        x, y = np.asarray(data[0]), np.asarray(data[1])
        return (x if preprocessor is None else preprocessor(tf.constant(x))), y

    if isinstance(train, tuple):  # keras-hub tasks do not shuffle arrays: a reshuffled tf.data pipeline instead
        x, y = arrays(train)
        train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=seed).batch(batch_size)
    else:
        preprocessor = None  # a dataset: the task's own `fit` maps its preprocessor
    if validation is not None:
        validation = tf.data.Dataset.from_tensor_slices(arrays(validation)).batch(256)
    callbacks = [] if batch_norm_images is None else [PreciseBatchNorm(batch_norm_images)]
    if preprocessor is not None:
        model.preprocessor = None  # keras-hub's documented switch: the inputs are already preprocessed
    try:
        # shuffle=False: `train` is a tf.data pipeline, reshuffled every epoch already (see above)
        return model.fit(train, validation_data=validation, epochs=epochs, verbose=0, callbacks=callbacks,
                         shuffle=False)
    finally:
        if preprocessor is not None:
            model.preprocessor = preprocessor


def _check_train(train, validation, num_classes_one_hot):
    if isinstance(train, tuple) and len(train) != 2:
        raise ValueError(f"`train` must be `(x, y)` or a tf.data.Dataset. Received: a tuple of {len(train)}")
    if validation is not None and num_classes_one_hot:
        x, y = validation
        validation = (x, keras.ops.convert_to_numpy(keras.ops.one_hot(np.asarray(y), num_classes_one_hot)))
    return validation


def _backbone_of(classifier):
    backbone = getattr(classifier, "backbone", None)
    if not isinstance(backbone, keras.Model):
        raise ValueError(f"`classifier` must have a `.backbone` (a keras-hub task). Received: "
                         f"{type(classifier).__name__}")
    return backbone


def _stage(classifier, train, validation, epochs, learning_rate, batch_size, one_hot_classes, batch_norm_images):
    epochs = check_int("epochs", epochs)
    learning_rate = check_number("learning_rate", learning_rate, low=0, low_inclusive=False)
    batch_size = check_int("batch_size", batch_size)
    if one_hot_classes is not None:
        one_hot_classes = check_int("one_hot_classes", one_hot_classes, minimum=2)
    validation = _check_train(train, validation, one_hot_classes)
    return _fit(classifier, train, validation, epochs, learning_rate, batch_size, one_hot_classes is not None,
                batch_norm_images=batch_norm_images)


def train_head(classifier, train, validation=None, epochs: int = 10, learning_rate: float = 3e-3,
               head_layers: int = 0, batch_size: int = 32, one_hot_classes: int | None = None,
               batch_norm_images=None):
    """Stage 1 of transfer: `freeze(classifier.backbone)` and train the new head at a high learning rate.

    The backbone's features stay as pretrained ("linear probing" when the head is one dense layer). With
    `head_layers=k` the top `k` weighted backbone layers train with the head: for layers that pretraining
    never trained, such as BERT's `[CLS]` pooler `pooled_dense`, which gets no gradient from MLM
    (`head_layers=1`).

    Args:
        classifier: a keras-hub task (`BertTextClassifier`, `ImageClassifier`) or any model with `.backbone`.
        train: `(x, y)` with integer labels, or a `tf.data.Dataset` of `(x, one-hot y)` batches (e.g.
            `augmented_dataset`; then pass `one_hot_classes`).
        validation: `(x, y)` with integer labels, or None. Evaluated after every epoch.
        epochs: int. Defaults to `10`.
        learning_rate: float. Adam's learning rate. Defaults to `3e-3`.
        head_layers: int. Top weighted backbone layers trained with the head. Defaults to `0`.
        batch_size: int. For `(x, y)` input. Defaults to `32`.
        one_hot_classes: int or None. The number of classes when `train` yields one-hot labels.
        batch_norm_images: array or None. The training images without augmentation: the trainable BatchNorm
            layers' statistics are re-estimated on them before every validation and at the end
            (`PreciseBatchNorm`). Frozen BatchNorm layers keep theirs. Defaults to `None` (moving averages).

    Returns:
        The `History` (`loss`, `accuracy`, and `val_*` with `validation`). Its `accuracy` is measured during
        training, in training mode (dropout on, BatchNorm on batch statistics); measure the trained model in
        inference mode with `accuracy(classifier, x, y)`.
    """
    backbone = _backbone_of(classifier)
    head_layers = check_int("head_layers", head_layers, minimum=0)
    freeze(backbone)
    if head_layers:
        unfreeze_top(backbone, head_layers)
    return _stage(classifier, train, validation, epochs, learning_rate, batch_size, one_hot_classes,
                  batch_norm_images)


def fine_tune_top(classifier, train, validation=None, epochs: int = 10, learning_rate: float = 3e-4,
                  unfreeze_layers: int | None = None, batch_size: int = 32, one_hot_classes: int | None = None,
                  batch_norm_images=None):
    """Stage 2 of transfer: `unfreeze_top(classifier.backbone, unfreeze_layers)`, train at a low learning rate.

    A low rate moves the pretrained weights a little instead of overwriting them with what 100 labels can
    say (catastrophic forgetting, 灾难性遗忘); the head, already trained in stage 1, sends useful gradients
    from the first step. Arguments as in `train_head`; `unfreeze_layers=None` unfreezes the whole backbone.

    Returns:
        `(History, names of the unfrozen layers)`.
    """
    names = unfreeze_top(_backbone_of(classifier), unfreeze_layers)
    history = _stage(classifier, train, validation, epochs, learning_rate, batch_size, one_hot_classes,
                     batch_norm_images)
    return history, names


def fine_tune(classifier, train, validation=None, head_epochs: int = 10, fine_tune_epochs: int = 10,
              head_learning_rate: float = 3e-3, fine_tune_learning_rate: float = 3e-4,
              unfreeze_layers: int | None = None, head_layers: int = 0, batch_size: int = 32,
              one_hot_classes: int | None = None, batch_norm_images=None) -> dict:
    """The whole transfer recipe: `train_head` (backbone frozen), then `fine_tune_top` at a low learning rate.

    Args:
        classifier, train, validation, batch_size, one_hot_classes, batch_norm_images: as in `train_head`.
        head_epochs, fine_tune_epochs: int. Epochs of each stage (`fine_tune_epochs=0` stops after stage 1).
        head_learning_rate, fine_tune_learning_rate: float. Adam's learning rates of the two stages.
        unfreeze_layers: int or None. Weighted layers unfrozen in stage 2 (`None`: all).
        head_layers: int. Top weighted backbone layers trained with the head in stage 1. Defaults to `0`.

    Returns:
        `{"head": History, "fine_tune": History or None, "unfrozen": [layer names]}`.
    """
    fine_tune_epochs = check_int("fine_tune_epochs", fine_tune_epochs, minimum=0)
    head = train_head(classifier, train, validation, epochs=head_epochs, learning_rate=head_learning_rate,
                      head_layers=head_layers, batch_size=batch_size, one_hot_classes=one_hot_classes,
                      batch_norm_images=batch_norm_images)
    result = {"head": head, "fine_tune": None, "unfrozen": []}
    if fine_tune_epochs:
        result["fine_tune"], result["unfrozen"] = fine_tune_top(
            classifier, train, validation, epochs=fine_tune_epochs, learning_rate=fine_tune_learning_rate,
            unfreeze_layers=unfreeze_layers, batch_size=batch_size, one_hot_classes=one_hot_classes,
            batch_norm_images=batch_norm_images)
    return result


def train_from_scratch(classifier, train, validation=None, epochs: int = 20, learning_rate: float = 1e-3,
                       batch_size: int = 32, one_hot_classes: int | None = None,
                       batch_norm_images=None) -> keras.callbacks.History:
    """Trains every weight of a randomly initialised classifier on the same labels: the baseline of `fine_tune`.

    Give it as many epochs as both stages of `fine_tune` together, so that neither side has more updates, and
    then check that it is trained to its ceiling (accuracy on its own training set in inference mode, the
    validation curve): a baseline that is still learning is not beaten, only stopped early. For a CNN with
    BatchNorm pass `batch_norm_images` (see `train_head`). Arguments as in `train_head`.
    """
    classifier.trainable = True
    return _stage(classifier, train, validation, epochs, learning_rate, batch_size, one_hot_classes,
                  batch_norm_images)


def accuracy(classifier, x, y, batch_size: int = 256) -> float:
    """Top-1 accuracy of a logits classifier on `(x, y)` with integer labels.

    Example:
    >>> classifier = build_image_classifier(ConvBackbone(stackwise_num_filters=(4,)), num_classes=2)
    >>> x = np.random.default_rng(0).random((4, 32, 32, 3), dtype="float32")
    >>> accuracy(classifier, x, np.argmax(classifier.predict(x, verbose=0), axis=-1))  # its own predictions
    1.0
    """
    y = np.asarray(y)
    logits = classifier.predict(x, batch_size=check_int("batch_size", batch_size), verbose=0)
    if logits.shape[0] != len(y):
        raise ValueError(f"`y` must hold one label per sample. Received: {len(y)} labels for {logits.shape[0]}")
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def batch_norm_layers(model) -> list:
    """Every `keras.layers.BatchNormalization` inside `model`, nested models included, in graph order."""
    found = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, layers.BatchNormalization):
            found.append(layer)
        else:
            found += batch_norm_layers(layer)
    return found


def reestimate_batch_norm(model, images, batch_size: int = 256) -> list[str]:
    """Replaces the moving statistics of the trainable BatchNorm layers by those of `images` ("precise BN").

    During training a BatchNorm layer normalises with the statistics of the batch and keeps exponential
    averages `m <- momentum * m + (1 - momentum) * batch_statistic` for inference. After a short run these
    averages still hold part of their start (mean 0, variance 1) and lag the weights (see `ConvBackbone`). This
    function runs `model` over `images` in training mode, without any weight update, and sets each layer's
    moving mean and variance to the average of the batch means and variances over those batches (Wu & Johnson,
    "Rethinking 'Batch' in BatchNorm", 2021: "precise BatchNorm"). One batch holding all of `images` gives
    the exact mean and (biased) variance of each layer's inputs.

    Frozen BatchNorm layers (`trainable=False`, e.g. a frozen pretrained backbone) keep their statistics.

    Args:
        model: a Keras model with BatchNorm layers somewhere inside.
        images: array `(n, ...)`: the training inputs, without augmentation.
        batch_size: int. Images per forward pass. Defaults to `256`.

    Returns:
        The names of the re-estimated layers.

    Example:
    >>> keras.utils.set_random_seed(0)
    >>> classifier = build_image_classifier(ConvBackbone(stackwise_num_filters=(4,)), num_classes=2)
    >>> images = np.random.default_rng(0).random((8, 32, 32, 3), dtype="float32")
    >>> reestimate_batch_norm(classifier, images)
    ['stack0_bn0', 'stack0_bn1']
    """
    batch_size = check_int("batch_size", batch_size)
    images = np.asarray(images, dtype="float32")
    if images.ndim < 2 or len(images) == 0:
        raise ValueError(f"`images` must be a non-empty batch (n, ...). Received: shape={images.shape}")
    targets = [layer for layer in batch_norm_layers(model) if layer.trainable]
    momenta = [layer.momentum for layer in targets]
    try:
        for k, start in enumerate(range(0, len(images), batch_size)):
            for layer in targets:  # m <- k/(k+1) m + 1/(k+1) batch: the running average of the batch statistics
                layer.momentum = k / (k + 1)
            model(images[start:start + batch_size], training=True)
    finally:
        for layer, momentum in zip(targets, momenta):
            layer.momentum = momentum
    return [layer.name for layer in targets]


def save_course_presets(folder, corpus_size: int = 2500, pool_size: int = 3000, mlm_epochs: int = 8,
                        pretext_epochs: int = 5, pretext: str = "caption_words", bert_sizes: dict | None = None,
                        filters=(16, 32, 64), seed: int = 0) -> dict:
    """Pretrains the course's tiny BERT and CNN as notebook 13 does and saves both presets under `folder`.

    Writes `folder/bert_captions_tiny` (MLM on `caption_corpus(corpus_size, corpus_size)`) and
    `folder/cnn_{pretext}` (the pretext on `pool_size` unlabelled scenes); load them with
    `keras_hub.models.BertBackbone.from_preset(path)` / `keras_hub.models.Backbone.from_preset(path)`, or
    `load_text_classifier(path, num_classes)`. The job behind `mmkeras pretrain`.

    `bert_sizes` overrides `build_masked_lm`'s `num_layers`, `num_heads`, `hidden_dim`, `intermediate_dim`;
    `filters` are the CNN's `stackwise_num_filters`.

    Returns:
        `{"bert": path, "cnn": path, "mlm_loss": [first, last], "pretext_loss": [first, last]}`.
    """
    import pathlib

    from mmkeras.config import seed_everything
    from mmkeras.data import load_scene_splits
    from mmkeras.data.scenes import SCENE_VOCABULARY
    from mmkeras.encoders.text import learn_vocabulary

    check_choice("pretext", pretext, PRETEXTS)
    sizes = dict(bert_sizes or {})
    unknown = set(sizes) - {"num_layers", "num_heads", "hidden_dim", "intermediate_dim"}
    if unknown:
        raise ValueError("`bert_sizes` accepts num_layers, num_heads, hidden_dim, intermediate_dim. "
                         f"Received: bert_sizes={bert_sizes!r}")
    folder = pathlib.Path(folder)
    seed_everything(check_int("seed", seed, minimum=0))
    corpus = caption_corpus(corpus_size, corpus_size, seed=1)
    masked_lm = build_masked_lm(learn_vocabulary(corpus), **sizes)
    mlm = pretrain_masked_lm(masked_lm, corpus, epochs=mlm_epochs, batch_size=64).history["loss"]
    masked_lm.save_to_preset(str(folder / "bert_captions_tiny"))
    pool = load_scene_splits(check_int("pool_size", pool_size), 1, 1, seed=1)["train"]
    backbone = ConvBackbone(stackwise_num_filters=filters)
    _, history = pretrain_image_backbone(backbone, pool.features["image"], pretext=pretext,
                                         texts=pool.features["text"], vocabulary=SCENE_VOCABULARY,
                                         epochs=pretext_epochs, seed=seed)
    backbone.save_to_preset(str(folder / f"cnn_{pretext}"))
    return {"bert": str(folder / "bert_captions_tiny"), "cnn": str(folder / f"cnn_{pretext}"),
            "mlm_loss": [float(mlm[0]), float(mlm[-1])],
            "pretext_loss": [float(history.history["loss"][0]), float(history.history["loss"][-1])]}
