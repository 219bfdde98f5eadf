"""Image-text matching (图文匹配): does this caption describe this picture? A match logit from cross-attention.

`ImageTextMatcher` reuses the fusion zoo's `CrossModalAttention`, with the caption's words as queries:

    image -> CNN -> a 4x4 grid of image tokens (+ a learned position embedding)   (batch, 16, c)
    caption -> TextVectorization -> Transformer encoder -> word tokens + mask     (batch, 8, d)
    words attend to image tokens: A = softmax(Q K^T / sqrt(d_k)), H = mean_words LayerNorm(Q + A V)
    match logit s = w_2^T ReLU(W_1 H + b_1) + b_2 = log p(match) / p(no match)

It learns from pairs: each picture with its own caption (a positive) and with captions of other scenes
(negatives). `make_matching_pairs` builds them from the captioned scenes (`mmkeras.data.scenes`):

* **random negatives** (随机负样本): the caption of another random description; it almost always differs in
  several attributes at once, so checking one or two attributes is enough to reject it;
* **hard negatives** (困难负样本): the picture's own description with exactly one attribute changed
  (`one_attribute_negatives`: "a small red cross at the top left" -> "a small blue cross at the top left").
  To reject those, the matcher must check every attribute.

`word_attention` returns the attention of every caption word over the image grid, for heat maps.
By default the tokenizer runs beside the model, in `model.preprocessor` (TensorFlow, in `tf.data`), and the model
itself reads token ids on any backend; `preprocessor=None` keeps it inside the text encoder (strings in the graph).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from mmkeras._validation import check_fraction, check_int, check_positive_ints, check_shape, check_words
from mmkeras.data.scenes import (
    SCENE_ATTRIBUTES,
    SCENE_CAPTION_LENGTH,
    SCENE_IMAGE_SIZE,
    SCENE_VALUES,
    SCENE_VOCABULARY,
    describe,
)
from mmkeras.data.schema import DataSchema, LabelSpec, ModalitySpec, MultimodalData
from mmkeras.encoders.image_tokens import build_image_token_encoder
from mmkeras.task import TaskModel

MATCH_SCHEMA = DataSchema(
    modalities=(
        ModalitySpec("image", (SCENE_IMAGE_SIZE, SCENE_IMAGE_SIZE, 3)),
        ModalitySpec("text", (), "string", vocabulary=SCENE_VOCABULARY),
    ),
    labels=(LabelSpec("match", 2, ("no match", "match")),),
)
"""Image-caption pairs: the picture, a caption, and whether the caption describes the picture (1) or not (0)."""


@keras.saving.register_keras_serializable(package="mmkeras")
class ImageTextMatcher(TaskModel):
    """An image-text matcher: the caption's words attend to the image grid, a small MLP gives one match logit.

    With word tokens `X_t` (a Transformer text encoder) as queries and image tokens `X_v`
    (`build_image_token_encoder`) as keys and values, the fusion zoo's `CrossModalAttention` computes

        A = softmax(Q K^T / sqrt(d_k)),  Q = X_t W_Q, K = X_v W_K, V = X_v W_V     (batch, heads, words, grid)
        H = masked_mean_words LayerNorm(Q + A V)                                   (batch, width)
        s = w_2^T ReLU(W_1 H + b_1) + b_2                                          (batch, 1): the match logit

    and `p(match | image, caption) = sigmoid(s)`, trained with binary cross-entropy on logits.

    `FusionClassifier(encoders, heads={"match": 2}, fusion=CrossModalAttention(query_index=1))` with the same
    encoders is the same idea without the hidden layer (notebook 11's exercise 2 measures what that layer adds);
    this model returns one logit with a binary loss by default and keeps its encoders and attention layer at hand
    for `word_attention`.

    Args:
        vocabulary: list of str. The caption words. Defaults to `SCENE_VOCABULARY`.
        sequence_length: int. Word tokens per caption. Defaults to `SCENE_CAPTION_LENGTH` (8).
        image_shape: tuple. `(height, width, channels)`. Defaults to `(32, 32, 3)`.
        filters: tuple of int. The image CNN's blocks (see `build_image_token_encoder`). Defaults to `(16, 32, 64)`.
        embedding_dim: int. Width of the word tokens (the text Transformer). Defaults to `32`.
        width: int. Width of the cross-attention (queries, keys, values, `H`). Defaults to `64`.
        num_heads: int. Attention heads, in the text encoder and in the cross-attention. Defaults to `2`.
        hidden_dim: int. Units of the head's hidden layer. Defaults to `64`.
        dropout: float. Dropout of the text encoder and of the attention weights. Defaults to `0.0`.
        preprocessor: `"auto"`, None or a `mmkeras.preprocessing.MultimodalPreprocessor`. `"auto"` tokenizes the
            captions beside the model (`image_text_preprocessor(vocabulary, sequence_length, image_shape)`), run by
            `fit`/`evaluate`/`predict`; `None` puts the tokenizer inside the text encoder. Defaults to `"auto"`.
        **kwargs: passed on to `keras.Model` (e.g. `name`).

    Inputs: `{"image": (batch, 32, 32, 3) float32, "text": (batch, 8) int32 token ids}` (with `preprocessor=None`,
    `(batch,)` strings); `fit`, `evaluate` and `predict` take the captions as strings. Output: the match logit
    `(batch, 1)`.

    Example:
    >>> matcher = ImageTextMatcher(filters=(4, 8), embedding_dim=8, width=8, hidden_dim=8)
    >>> raw = {"image": np.zeros((2, 32, 32, 3), "float32"), "text": np.array(["a small red cross"] * 2)}
    >>> matcher.predict(raw, verbose=0).shape
    (2, 1)
    >>> tuple(matcher(matcher.preprocessor(raw)).shape)  # the model itself reads token ids
    (2, 1)
    """

    def __init__(self, vocabulary=SCENE_VOCABULARY, sequence_length=SCENE_CAPTION_LENGTH,
                 image_shape=(SCENE_IMAGE_SIZE, SCENE_IMAGE_SIZE, 3), filters=(16, 32, 64), embedding_dim=32, width=64,
                 num_heads=2, hidden_dim=64, dropout=0.0, preprocessor="auto", **kwargs):
        from mmkeras.encoders import build_text_encoder
        from mmkeras.fusion import CrossModalAttention
        from mmkeras.preprocessing import MultimodalPreprocessor, check_preprocessor, image_text_preprocessor

        vocabulary = check_words("vocabulary", vocabulary)
        sequence_length = check_int("sequence_length", sequence_length)
        image_shape = check_shape("image_shape", image_shape, rank=3)
        filters = check_positive_ints("filters", filters)
        embedding_dim, width = check_int("embedding_dim", embedding_dim), check_int("width", width)
        num_heads, hidden_dim = check_int("num_heads", num_heads), check_int("hidden_dim", hidden_dim)
        dropout = check_fraction("dropout", dropout)
        if preprocessor == "auto":
            preprocessor = image_text_preprocessor(vocabulary, sequence_length, image_shape)
        elif preprocessor is not None and not isinstance(preprocessor, MultimodalPreprocessor):
            raise ValueError(f"`preprocessor` must be 'auto', None or a MultimodalPreprocessor. "
                             f"Received: preprocessor={preprocessor!r}")
        preprocessor = check_preprocessor(preprocessor, ("image", "text"))

        # === Functional graph ===
        image_encoder = build_image_token_encoder(image_shape, filters, name="image_encoder")
        text_encoder = build_text_encoder("transformer", vocabulary=vocabulary, sequence_length=sequence_length,
                                          embedding_dim=embedding_dim, hidden_dim=2 * embedding_dim,
                                          num_heads=num_heads, dropout=dropout, sequence_output=True,
                                          name="text_encoder", preprocessed=preprocessor is not None)
        fusion = CrossModalAttention(query_index=1, width=width, num_heads=num_heads, dropout=dropout,
                                     name="cross_attention")  # queries: the words (input 1); keys, values: the image
        image = keras.Input(shape=image_shape, name="image")
        text = text_encoder.inputs[0]  # token ids (batch, L), or strings (batch,) with the tokenizer inside
        text = keras.Input(shape=text.shape[1:], dtype=text.dtype, name="text")
        tokens = image_encoder(image)  # (batch, grid, filters[-1])
        words = text_encoder(text)  # {"sequence": (batch, words, embedding_dim), "padding_mask": (batch, words)}
        fused = fusion([tokens, words["sequence"]], padding_masks=[None, words["padding_mask"]])  # (batch, width)
        hidden = layers.Dense(hidden_dim, activation="relu", name="match_hidden")(fused)  # (batch, hidden_dim)
        logit = layers.Dense(1, dtype="float32", name="match")(hidden)  # (batch, 1), float32 under mixed precision
        super().__init__(inputs={"image": image, "text": text}, outputs=logit, **kwargs)

        # === Config ===
        self.preprocessor = preprocessor
        self.image_encoder, self.text_encoder, self.fusion = image_encoder, text_encoder, fusion
        self.vocabulary = vocabulary
        self.sequence_length = sequence_length
        self.image_shape = image_shape
        self.filters = filters
        self.embedding_dim = embedding_dim
        self.width = width
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.dropout = dropout

    def label_keys(self):
        """What `mmkeras.data.to_dataset(label_keys=...)` must yield for this model (and `fit_classifier` reads)."""
        return "match"

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """Configures training, with defaults that know the output is a logit.

        Args:
            optimizer: `"auto"` (Adam with step size 1e-3) or any Keras optimizer.
            loss: `"auto"`: binary cross-entropy on the logit, `-[y log sigmoid(s) + (1 - y) log(1 - sigmoid(s))]`.
            metrics: `"auto"`: accuracy of the decision `s > 0`.
            **kwargs: passed on to `keras.Model.compile`.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(1e-3)
        if loss == "auto":
            loss = keras.losses.BinaryCrossentropy(from_logits=True)
        if metrics == "auto":
            metrics = [keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)]  # on logits: s > 0
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "vocabulary": list(self.vocabulary),
                "sequence_length": self.sequence_length, "image_shape": list(self.image_shape),
                "filters": list(self.filters), "embedding_dim": self.embedding_dim, "width": self.width,
                "num_heads": self.num_heads, "hidden_dim": self.hidden_dim, "dropout": self.dropout,
                "preprocessor": None if self.preprocessor is None else keras.saving.serialize_keras_object(
                    self.preprocessor)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("preprocessor"), dict):
            config["preprocessor"] = keras.saving.deserialize_keras_object(config["preprocessor"])
        return cls(**config)


# === Negatives ===

def _labels_of(data) -> dict:
    labels = data.labels if isinstance(data, MultimodalData) else data
    if not isinstance(labels, dict) or set(SCENE_ATTRIBUTES) - set(labels):
        raise ValueError(f"Expected the captioned scenes' labels {SCENE_ATTRIBUTES} (a MultimodalData from "
                         f"mmkeras.data.load_scene_splits, or its labels dict). Received: {type(data).__name__}")
    return {a: np.asarray(labels[a], dtype=np.int64) for a in SCENE_ATTRIBUTES}


def _rng(rng):
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(check_int("seed", rng, minimum=0))


def captions_of(labels) -> np.ndarray:
    """The caption of every scene from its attribute ids: `describe(shape, color, size, position)` per row."""
    labels = _labels_of(labels)
    return np.array([describe(*(int(labels[a][i]) for a in SCENE_ATTRIBUTES)) for i in range(len(labels["shape"]))],
                    dtype=object)


def one_attribute_negatives(data, rng=0, attributes=SCENE_ATTRIBUTES):
    """Hard negatives: every scene's description with exactly one attribute changed to another value.

    For scene i an attribute `a_i` is drawn uniformly from `attributes`, and its value `v` becomes
    `(v + k) mod K_a` with `k` uniform in `1 .. K_a - 1`: a uniformly drawn *other* value. The other three
    attributes stay, so the negative caption differs from the true one in exactly one attribute.

    Args:
        data: MultimodalData of the captioned scenes, or its labels dict.
        rng: `np.random.Generator` or int seed. Defaults to `0`.
        attributes: which attributes may change. Defaults to all four.

    Returns:
        `(captions, labels, changed)`: the negative captions `(n,)`, their attribute ids (a dict), and the index
        in `SCENE_ATTRIBUTES` of the attribute that changed `(n,)`.

    Example:
    >>> captions, labels, changed = one_attribute_negatives({"shape": [3], "color": [0], "size": [0], "position": [0]})
    >>> SCENE_ATTRIBUTES[int(changed[0])], str(captions[0]) != "a small red cross at the top left"
    ('position', True)
    """
    labels, rng = _labels_of(data), _rng(rng)
    attributes = tuple(attributes) if not isinstance(attributes, str) else (attributes,)
    if not attributes or any(a not in SCENE_ATTRIBUTES for a in attributes):
        raise ValueError(f"`attributes` must be a non-empty list from {SCENE_ATTRIBUTES}. "
                         f"Received: attributes={attributes!r}")
    n = len(labels["shape"])
    choice = np.array([SCENE_ATTRIBUTES.index(a) for a in attributes])[rng.integers(0, len(attributes), n)]
    negative = {a: v.copy() for a, v in labels.items()}
    for index, name in enumerate(SCENE_ATTRIBUTES):
        k = len(SCENE_VALUES[name])
        rows = choice == index
        offset = rng.integers(1, k, size=int(rows.sum()))  # never 0: the value really changes
        negative[name][rows] = (labels[name][rows] + offset) % k
    return captions_of(negative), negative, choice.astype(np.int32)


def random_negatives(data, rng=0):
    """Random negatives: the caption of a uniformly drawn description that is *not* the scene's own.

    Returns:
        `(captions, labels, changed)` as `one_attribute_negatives`, with `changed` the number of attributes that
        differ (1 to 4), since several usually do.

    Example:
    >>> captions, _, changed = random_negatives({"shape": [3], "color": [0], "size": [0], "position": [0]})
    >>> str(captions[0]) != "a small red cross at the top left", 1 <= int(changed[0]) <= 4
    (True, True)
    """
    labels, rng = _labels_of(data), _rng(rng)
    n = len(labels["shape"])
    negative = {a: rng.integers(0, len(SCENE_VALUES[a]), n) for a in SCENE_ATTRIBUTES}
    same = np.all([negative[a] == labels[a] for a in SCENE_ATTRIBUTES], axis=0)
    while same.any():  # 1 in 540: draw those again, so that a "negative" is never the true description
        for a in SCENE_ATTRIBUTES:
            negative[a][same] = rng.integers(0, len(SCENE_VALUES[a]), int(same.sum()))
        same = np.all([negative[a] == labels[a] for a in SCENE_ATTRIBUTES], axis=0)
    differ = np.sum([negative[a] != labels[a] for a in SCENE_ATTRIBUTES], axis=0)
    return captions_of(negative), negative, differ.astype(np.int32)


def make_matching_pairs(data, hard_negatives: int = 1, random_negatives_per_image: int = 1,
                        positives: int | None = None, seed: int = 0) -> MultimodalData:
    """Image-caption pairs for matching: each scene with its own caption and with negative captions.

    Every scene appears `positives` times with its caption (label 1), `hard_negatives` times with a caption that
    differs in one attribute, and `random_negatives_per_image` times with a random other caption (label 0).
    `positives` defaults to the number of negatives, so that both classes are equally frequent.

    Args:
        data: MultimodalData of the captioned scenes (`load_scene_splits(...)["train"]`).
        hard_negatives: int >= 0. One-attribute negatives per scene. Defaults to `1`.
        random_negatives_per_image: int >= 0. Random negatives per scene. Defaults to `1`.
        positives: int or None. Copies of the true pair per scene. Defaults to the number of negatives.
        seed: int. Seeds which attributes change and the random captions. Defaults to `0`.

    Returns:
        A `MultimodalData` (schema `MATCH_SCHEMA`) with features `{"image", "text"}`, label `"match"`, and meta
        `"kind"` ("positive", "hard" or "random"), `"changed"` (for hard negatives the index in `SCENE_ATTRIBUTES`
        of the changed attribute, else -1) and `"scene"` (the index of the picture in `data`).

    Example:
    >>> from mmkeras.data.scenes import make_scenes
    >>> pairs = make_matching_pairs(make_scenes(4), hard_negatives=1, random_negatives_per_image=1)
    >>> len(pairs), pairs.labels["match"].tolist()[:4]
    (16, [1, 1, 0, 0])
    """
    if not isinstance(data, MultimodalData) or "image" not in data.features:
        raise ValueError(f"`data` must be a MultimodalData of the captioned scenes (with an 'image'). "
                         f"Received: {type(data).__name__}")
    hard = check_int("hard_negatives", hard_negatives, minimum=0)
    easy = check_int("random_negatives_per_image", random_negatives_per_image, minimum=0)
    if hard + easy == 0:
        raise ValueError(f"Ask for at least one negative per scene. Received: hard_negatives={hard_negatives}, "
                         f"random_negatives_per_image={random_negatives_per_image}")
    positives = hard + easy if positives is None else check_int("positives", positives)
    rng = _rng(seed)
    n = len(data)
    true_captions = captions_of(data)
    blocks = [(true_captions, 1, "positive", np.full(n, -1, np.int32))] * positives
    for _ in range(hard):
        captions, _, changed = one_attribute_negatives(data, rng)
        blocks.append((captions, 0, "hard", changed))
    for _ in range(easy):
        captions, _, _ = random_negatives(data, rng)
        blocks.append((captions, 0, "random", np.full(n, -1, np.int32)))
    k = len(blocks)
    order = np.arange(n * k).reshape(k, n).T.reshape(-1)  # scene by scene: (scene 0: block 0, 1, ...), (scene 1: ...)
    text = np.concatenate([b[0] for b in blocks])[order]
    match = np.concatenate([np.full(n, b[1], np.int32) for b in blocks])[order]
    kind = np.concatenate([np.full(n, b[2], dtype=object) for b in blocks])[order]
    changed = np.concatenate([b[3] for b in blocks])[order]
    scene = np.tile(np.arange(n), k)[order]
    return MultimodalData({"image": data.features["image"][scene], "text": text}, {"match": match},
                          {"kind": kind, "changed": changed, "scene": scene}, MATCH_SCHEMA)


# === Evaluation ===

def match_logits(model, pairs, batch_size: int = 256) -> np.ndarray:
    """The match logit `s = log p(match) / p(no match)` of every pair, `(n,)`: `s > 0` says "match"."""
    from mmkeras.training import as_dataset

    ds = as_dataset(model, pairs, check_int("batch_size", batch_size), label_keys=())  # features only
    return keras.ops.convert_to_numpy(model.predict(ds, verbose=0)).reshape(-1)  # (n, 1) -> (n,)


def matching_report(model, pairs, batch_size: int = 256) -> dict:
    """Accuracy of the match decision `s > 0`, overall, on positives, and per changed attribute of hard negatives.

    Returns:
        `{"accuracy", "positives", "negatives", "<attribute>" for every attribute changed in some hard negative}`:
        the share of correct decisions in each group (`"shape"`: hard negatives whose shape changed, rejected).
    """
    if not isinstance(pairs, MultimodalData) or "kind" not in pairs.meta:
        raise ValueError(f"`pairs` must come from make_matching_pairs. Received: {type(pairs).__name__}")
    s = match_logits(model, pairs, batch_size)
    correct = (s > 0).astype(np.int32) == pairs.labels["match"]
    report = {"accuracy": float(correct.mean()),
              "positives": float(correct[pairs.labels["match"] == 1].mean()),
              "negatives": float(correct[pairs.labels["match"] == 0].mean())}
    hard = pairs.meta["kind"] == "hard"
    for index, name in enumerate(SCENE_ATTRIBUTES):
        rows = hard & (pairs.meta["changed"] == index)
        if rows.any():
            report[name] = float(correct[rows].mean())
    return report


def word_attention(model, images, captions) -> np.ndarray:
    """How much each caption word attends to each image position: `(batch, words, grid_h, grid_w)`.

    The weights `A = softmax(Q K^T / sqrt(d_k))` of the matcher's `CrossModalAttention`, averaged over its heads;
    every word's weights over the grid sum to 1. Padding words (beyond the caption) get all-zero rows.

    Args:
        model: an `ImageTextMatcher`.
        images: array `(batch, 32, 32, 3)`.
        captions: list or array of str `(batch,)`.
    """
    images = np.asarray(images, dtype="float32")
    captions = np.asarray(captions).astype(str)
    if images.ndim != 4 or len(images) != len(captions):
        raise ValueError(f"Pass images (batch, h, w, c) and one caption per image. Received: images of shape "
                         f"{images.shape} and {len(captions)} captions")
    tokens = model.image_encoder(images, training=False)  # (batch, h*w, c)
    if model.preprocessor is not None:
        text = model.preprocessor.preprocess("text", captions)  # token ids (batch, L)
    else:
        import tensorflow as tf  # the text encoder reads strings: a TensorFlow graph

        text = tf.constant(captions)
    words = model.text_encoder(text, training=False)  # {"sequence", "padding_mask"}
    features = [tokens, words["sequence"]]
    scores = model.fusion.attention_scores(features, [None, words["padding_mask"]])  # (batch, heads, words, h*w)
    scores = keras.ops.convert_to_numpy(scores).mean(axis=1)  # (batch, words, h*w)
    mask = keras.ops.convert_to_numpy(words["padding_mask"])[:, :, None]  # (batch, words, 1)
    side = int(round(np.sqrt(scores.shape[-1])))
    return (scores * mask).reshape(len(images), scores.shape[1], side, -1)


def train_matcher(train_pairs, val_pairs=None, epochs: int = 8, batch_size: int = 64, learning_rate: float = 1e-3,
                  seed: int = 0, verbose=0, **matcher_kwargs):
    """Seeds, builds a matcher and trains it with the course's recipe (`fit_classifier`: Adam, cosine decay).

    Returns:
        `(model, TrainResult)`.
    """
    from mmkeras.config import seed_everything
    from mmkeras.training import fit_classifier

    seed_everything(check_int("seed", seed, minimum=0))
    model = ImageTextMatcher(**matcher_kwargs)
    result = fit_classifier(model, train_pairs, val_pairs, epochs=epochs, batch_size=batch_size,
                            learning_rate=learning_rate, seed=seed, verbose=verbose)
    return model, result


__all__ = [
    "MATCH_SCHEMA",
    "build_image_token_encoder",
    "ImageTextMatcher",
    "captions_of",
    "make_matching_pairs",
    "match_logits",
    "matching_report",
    "one_attribute_negatives",
    "random_negatives",
    "train_matcher",
    "word_attention",
]
