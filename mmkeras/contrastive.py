"""Contrastive image-text learning (对比学习): a CLIP-style dual encoder, its loss, retrieval and zero-shot.

Two encoders map an image and a caption into one embedding space (跨模态检索, cross-modal retrieval, then
compares them there). For a batch of N pairs with L2-normalised embeddings `I_e` (image) and `T_e` (text),
both `(N, d)`, CLIP's loss is a symmetric cross-entropy over the N x N similarity logits:

    logits = exp(t) * I_e @ T_e^T                                    (N, N); exp(t) = 1 / tau, clipped at 100
    loss   = (CE(logits, arange(N)) + CE(logits^T, arange(N))) / 2

Row i of `logits` scores image i against every caption of the batch; its target is caption i (the diagonal),
and the other N - 1 captions are the negatives. Each of the two cross-entropies is the InfoNCE loss:
`-1/N sum_i log( exp(s_ii / tau) / sum_j exp(s_ij / tau) )` with cosine similarities `s_ij`.

* `clip_loss(image_embeddings, text_embeddings, log_temperature)`: the loss, with `keras.ops`;
* `CLIPModel(image_encoder, text_encoder)`: the dual encoder; its loss lives in `compute_loss`, so training is
  `model.fit` on a dataset of `{"image", "text"}` dicts without labels;
* `build_clip_model()`: the dual encoder sized for the captioned scenes (`mmkeras.data.scenes`);
* `retrieval_recall(similarity, ks)`: recall@k of a query-by-gallery similarity matrix (other chapters reuse it);
* `scene_prompts()`, `zero_shot_attributes(...)`: zero-shot classification of the scenes' attributes by captions;
* `bench()`: the notebook's recipe, timed (`mmkeras bench-...`).

`build_clip_model()` splits the tokenizer out of the graph, the keras-hub way: `model.preprocessor` turns captions
into token ids (TensorFlow, mapped in `tf.data` by `fit`/`evaluate`/`predict`, and by `encode_text`), and the model
itself reads numbers with `keras.ops` only, on any backend. `preprocessor=None` keeps the tokenizer inside the text
encoder (a TensorFlow-only graph that reads strings).

References:
    Radford et al. Learning Transferable Visual Models From Natural Language Supervision (CLIP). ICML 2021.
    van den Oord, Li, Vinyals. Representation Learning with Contrastive Predictive Coding (InfoNCE). 2018.
"""

from __future__ import annotations

import itertools
import math
import time

import keras
import numpy as np
from keras import layers, ops

from mmkeras._validation import check_bool, check_choice, check_int, check_number
from mmkeras.config import is_smoke, seed_everything
from mmkeras.models import input_for
from mmkeras.optimizers import course_optimizer
from mmkeras.task import TaskModel

MAX_LOGIT_SCALE = 100.0
"""CLIP clips the logit scale `exp(t) = 1 / tau` at 100 (a temperature of at least 0.01)."""
INITIAL_TEMPERATURE = 0.07
"""CLIP's initial temperature: `t = log(1 / 0.07)`, a logit scale of about 14.3."""


def _logit_scale(log_temperature, max_scale):
    """`exp(min(t, log(max_scale)))`: the clipped scale (no gradient to `t` while it is clipped, as in CLIP)."""
    t = ops.cast(log_temperature, "float32")
    return ops.exp(ops.minimum(t, math.log(max_scale)))


def clip_loss(image_embeddings, text_embeddings, log_temperature, max_scale: float = MAX_LOGIT_SCALE):
    """CLIP's symmetric cross-entropy (InfoNCE both ways) over the N x N image-text similarity logits.

    With `s = exp(min(t, log max_scale))` and row-normalised embeddings:

        logits = s * I @ T^T                                                    # (N, N)
        loss   = -1/(2N) sum_i [ log softmax_j(logits)_ij + log softmax_j(logits^T)_ij ] at j = i

    i.e. `(CE(logits, arange N) + CE(logits^T, arange N)) / 2`. The embeddings are used as given: pass
    L2-normalised ones (as `CLIPModel` does) for cosine similarities. With one pair (N = 1) the only caption
    is the right one, so the loss is exactly 0: a batch of one has nothing to contrast.

    Args:
        image_embeddings: tensor `(N, d)`. Row i is the image of pair i.
        text_embeddings: tensor `(N, d)`. Row i is the caption of pair i.
        log_temperature: scalar. `t`, the log of the *inverse* temperature (CLIP's `logit_scale` parameter):
            the logits are multiplied by `exp(t) = 1 / tau`.
        max_scale: float. The largest scale `exp(t)`; larger values are clipped. Defaults to `100`.

    Returns:
        A scalar float32 tensor.

    Example:
    >>> e = keras.ops.eye(2)  # two orthogonal unit vectors, each image equal to its caption
    >>> round(float(clip_loss(e, e, 0.0)), 4)  # logits [[1, 0], [0, 1]]: log(1 + e^-1)
    0.3133
    """
    max_scale = check_number("max_scale", max_scale, low=0, low_inclusive=False)
    image_embeddings = ops.cast(ops.convert_to_tensor(image_embeddings), "float32")
    text_embeddings = ops.cast(ops.convert_to_tensor(text_embeddings), "float32")
    if len(image_embeddings.shape) != 2 or len(text_embeddings.shape) != 2:
        raise ValueError(f"clip_loss expects embeddings of shape (N, d). Received: image_embeddings.shape="
                         f"{tuple(image_embeddings.shape)}, text_embeddings.shape={tuple(text_embeddings.shape)}")
    (n_i, d_i), (n_t, d_t) = image_embeddings.shape, text_embeddings.shape
    if (n_i is not None and n_t is not None and n_i != n_t) or (d_i is not None and d_t is not None and d_i != d_t):
        raise ValueError(f"clip_loss needs as many captions as images, of the same width (pair i = row i). "
                         f"Received: image_embeddings.shape={(n_i, d_i)}, text_embeddings.shape={(n_t, d_t)}")
    scale = _logit_scale(log_temperature, max_scale)
    logits = scale * ops.matmul(image_embeddings, ops.transpose(text_embeddings))  # (N, N): image i vs caption j
    image_to_text = ops.diagonal(ops.log_softmax(logits, axis=1))  # (N,): log p(caption i | image i)
    text_to_image = ops.diagonal(ops.log_softmax(logits, axis=0))  # (N,): log p(image i | caption i)
    return -(ops.mean(image_to_text) + ops.mean(text_to_image)) / 2


@keras.saving.register_keras_serializable(package="mmkeras")
class CLIPModel(TaskModel):
    """A dual encoder trained with CLIP's contrastive loss: images and captions in one embedding space.

    Each modality has its own encoder, a linear projection to the shared width `d` and an L2 normalisation:

        I_e = normalize(W_i image_encoder(image))     T_e = normalize(W_t text_encoder(text))     (batch, d)

    The model returns both embeddings, `{"image": I_e, "text": T_e}`; their dot product is the cosine
    similarity. `compute_loss` applies `clip_loss(I_e, T_e, t)` with the model's own learnable `t`
    (`log_temperature`, initialised at `log(1 / temperature)`), so `fit` needs no labels: every other caption
    of the batch is a negative for an image, and every other image a negative for a caption.

    Args:
        image_encoder: keras.Model. Image `(batch, h, w, c)` -> features `(batch, f_i)`; a functional model.
        text_encoder: keras.Model. Captions -> features `(batch, f_t)`: token ids `(batch, L)` when a
            `preprocessor` tokenizes them, else `(batch,)` strings (a tokenizer inside the encoder).
        embedding_dim: int. The width `d` of the shared embedding space. Defaults to `64`.
        temperature: float. The initial temperature `tau` (CLIP: 0.07); the logits are `s_ij / tau`.
            Defaults to `0.07`.
        learn_temperature: bool. `True` trains `t = log(1 / tau)` with the encoders (CLIP); `False` keeps
            `tau` fixed. Defaults to `True`.
        max_scale: float. The scale `1 / tau` is clipped at this value (CLIP: 100). Defaults to `100`.
        preprocessor: `mmkeras.preprocessing.MultimodalPreprocessor` for `"image"` and `"text"`, or None. Run in
            `tf.data` by `fit`/`evaluate`/`predict` and by `encode_image`/`encode_text`; `model(x)` then takes
            its outputs (token ids). Defaults to None (the encoders read the raw inputs).
        **kwargs: passed on to `keras.Model` (e.g. `name`).

    Example:
    >>> model = build_clip_model(embedding_dim=16)  # with its preprocessor: captions -> token ids
    >>> texts = ["a small red cross at the top", "a large blue circle on the left"]
    >>> x = model.preprocessor({"image": np.zeros((2, 32, 32, 3)), "text": texts})  # text: (2, 8) token ids
    >>> out = model(x)
    >>> tuple(out["image"].shape), tuple(out["text"].shape), round(model.temperature, 2)
    ((2, 16), (2, 16), 0.07)
    >>> model.similarity(np.zeros((3, 32, 32, 3), "float32"), texts).shape  # raw captions, tokenized on the way
    (3, 2)
    >>> model.compile()  # Adam; the loss is CLIP's, in compute_loss
    """

    def __init__(self, image_encoder, text_encoder, embedding_dim=64, temperature=INITIAL_TEMPERATURE,
                 learn_temperature=True, max_scale=MAX_LOGIT_SCALE, preprocessor=None, **kwargs):
        from mmkeras.preprocessing import check_preprocessor

        for name, encoder in (("image_encoder", image_encoder), ("text_encoder", text_encoder)):
            if not isinstance(encoder, keras.Model):
                raise ValueError(f"`{name}` must be a keras.Model. Received: {name}={encoder!r}")
        embedding_dim = check_int("embedding_dim", embedding_dim)
        max_scale = check_number("max_scale", max_scale, low=1, low_inclusive=True)
        temperature = check_number("temperature", temperature, low=1 / max_scale, low_inclusive=True)
        learn_temperature = check_bool("learn_temperature", learn_temperature)
        preprocessor = check_preprocessor(preprocessor, ("image", "text"))

        # === Functional graph ===
        inputs = {"image": input_for("image", image_encoder), "text": input_for("text", text_encoder)}
        image_features = image_encoder(inputs["image"])  # (batch, f_i)
        text_features = text_encoder(inputs["text"])  # (batch, f_t)
        for name, features in (("image_encoder", image_features), ("text_encoder", text_features)):
            if isinstance(features, dict) or len(features.shape) != 2:
                raise ValueError(f"`{name}` must return one feature vector per sample, (batch, features). "
                                 f"Received: {features!r}")
        image_projection = layers.Dense(embedding_dim, use_bias=False, name="image_projection")
        text_projection = layers.Dense(embedding_dim, use_bias=False, name="text_projection")
        outputs = {
            "image": layers.UnitNormalization(name="image_embedding")(image_projection(image_features)),  # (b, d)
            "text": layers.UnitNormalization(name="text_embedding")(text_projection(text_features)),  # (b, d)
        }
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.preprocessor = preprocessor
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.image_projection = image_projection
        self.text_projection = text_projection
        self.embedding_dim = embedding_dim
        self.initial_temperature = temperature
        self.learn_temperature = learn_temperature
        self.max_scale = max_scale
        # t = log(1 / tau): CLIP's logit_scale parameter. A model-owned weight, read by compute_loss.
        self.log_temperature = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(math.log(1 / temperature)),
            trainable=learn_temperature, name="log_temperature",
        )
        self.temperature_tracker = keras.metrics.Mean(name="temperature")

    @property
    def logit_scale(self) -> float:
        """The current scale `exp(t) = 1 / tau` of the logits, clipped at `max_scale`."""
        return float(keras.ops.convert_to_numpy(_logit_scale(self.log_temperature, self.max_scale)))

    @property
    def temperature(self) -> float:
        """The current temperature `tau = 1 / exp(t)` (at least `1 / max_scale`)."""
        return 1.0 / self.logit_scale

    def compile(self, optimizer="auto", **kwargs):
        """Configures training: `"auto"` is Adam with step size 1e-3. The loss is CLIP's (`compute_loss`)."""
        if "loss" in kwargs and kwargs["loss"] is not None:
            raise ValueError(f"CLIPModel computes its own loss (clip_loss in compute_loss); do not pass `loss`. "
                             f"Received: loss={kwargs['loss']!r}")
        kwargs.pop("loss", None)
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(1e-3)
        super().compile(optimizer=optimizer, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """`clip_loss(y_pred["image"], y_pred["text"], t)`; `y` is ignored (the pairing is the target)."""
        if y_pred is None:
            y_pred = self(x, training=training)
        loss = clip_loss(y_pred["image"], y_pred["text"], self.log_temperature, self.max_scale)
        self.temperature_tracker.update_state(1.0 / _logit_scale(self.log_temperature, self.max_scale))
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    compile_arguments = ("optimizer", "metrics", "jit_compile")  # the loss is CLIP's own, in compute_loss

    def encode_image(self, images, batch_size: int = 256) -> np.ndarray:
        """The L2-normalised image embeddings `(n, d)` of images `(n, h, w, c)`, as NumPy."""
        return self._encode("image", images, self.image_encoder, self.image_projection, batch_size)

    def encode_text(self, texts, batch_size: int = 256) -> np.ndarray:
        """The L2-normalised caption embeddings `(n, d)` of a list of captions, as NumPy."""
        texts = np.asarray([str(t) for t in (texts.tolist() if isinstance(texts, np.ndarray) else texts)])
        return self._encode("text", texts, self.text_encoder, self.text_projection, batch_size)

    def _encode(self, modality, values, encoder, projection, batch_size):
        batch_size = check_int("batch_size", batch_size)
        chunks = []
        for start in range(0, len(values), batch_size):
            x = values[start:start + batch_size]
            if self.preprocessor is not None:
                x = self.preprocessor.preprocess(modality, x)  # captions -> token ids (batch, L)
            elif modality == "text":
                import tensorflow as tf  # the text encoder reads strings: a TensorFlow graph

                x = tf.constant(x)
            z = projection(encoder(ops.convert_to_tensor(x) if modality == "image" else x, training=False))
            chunks.append(keras.ops.convert_to_numpy(ops.normalize(z, axis=-1)))  # (batch, d), unit rows
        if not chunks:
            raise ValueError(f"Nothing to encode. Received: {len(values)} items")
        return np.concatenate(chunks)

    def similarity(self, images, texts, batch_size: int = 256) -> np.ndarray:
        """Cosine similarities `(n_images, n_texts)`: `I_e @ T_e^T`."""
        return self.encode_image(images, batch_size) @ self.encode_text(texts, batch_size).T

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_encoder": keras.saving.serialize_keras_object(self.image_encoder),
            "text_encoder": keras.saving.serialize_keras_object(self.text_encoder),
            "embedding_dim": self.embedding_dim,
            "temperature": self.initial_temperature,
            "learn_temperature": self.learn_temperature,
            "max_scale": self.max_scale,
            "preprocessor": None if self.preprocessor is None else keras.saving.serialize_keras_object(
                self.preprocessor),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("image_encoder", "text_encoder", "preprocessor"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def build_scene_image_encoder(filters=(32, 64), output_dim: int = 128, name: str = "image_encoder") -> keras.Model:
    """The image encoder for the 32x32 scenes: `mmkeras.encoders.build_conv_stack` with a flattened output.

    The global pooling of `build_image_encoder` would throw away *where* the object is, and the captions name
    the position; flattening the last feature map keeps it. No augmentation: a shift or zoom would change
    the position or the size that the caption states.
    """
    from mmkeras.data.scenes import SCENE_IMAGE_SIZE
    from mmkeras.encoders import build_conv_stack

    encoder = build_conv_stack(filters, name=name, input_shape=(SCENE_IMAGE_SIZE, SCENE_IMAGE_SIZE, 3),
                               output_dim=output_dim)
    return encoder


def build_scene_text_encoder(kind: str = "rnn", hidden_dim: int = 32, name: str = "text_encoder",
                             preprocessed: bool = False) -> keras.Model:
    """The caption encoder for the scenes: `mmkeras.encoders.build_text_encoder` on `SCENE_VOCABULARY`.

    `preprocessed=True`: it reads the token ids of `image_text_preprocessor(SCENE_VOCABULARY, 8, ...)`.
    """
    from mmkeras.data.scenes import SCENE_CAPTION_LENGTH, SCENE_VOCABULARY
    from mmkeras.encoders import build_text_encoder

    return build_text_encoder(kind=kind, vocabulary=SCENE_VOCABULARY, sequence_length=SCENE_CAPTION_LENGTH,
                              embedding_dim=32, hidden_dim=hidden_dim, dropout=0.0, name=name,
                              preprocessed=preprocessed)


def build_clip_model(embedding_dim: int = 64, filters=(32, 64), image_features: int = 128, text_kind: str = "rnn",
                     temperature: float = INITIAL_TEMPERATURE, learn_temperature: bool = True,
                     name: str = "clip", preprocessor="auto") -> CLIPModel:
    """A `CLIPModel` sized for the captioned scenes: a small CNN and a bidirectional-GRU caption encoder.

    `preprocessor="auto"` (the default) tokenizes the captions in `model.preprocessor` (`image_text_preprocessor`)
    and gives the model a numeric text encoder; `None` keeps the tokenizer inside the text encoder.

    Example:
    >>> {key: tensor.shape for key, tensor in build_clip_model(embedding_dim=8).output.items()}
    {'image': (None, 8), 'text': (None, 8)}
    """
    from mmkeras.data.scenes import SCENE_CAPTION_LENGTH, SCENE_VOCABULARY
    from mmkeras.preprocessing import image_text_preprocessor

    split = check_choice("preprocessor", preprocessor, ("auto", None)) == "auto"
    image_encoder = build_scene_image_encoder(filters, image_features)
    return CLIPModel(image_encoder, build_scene_text_encoder(text_kind, preprocessed=split),
                     embedding_dim=embedding_dim, temperature=temperature, learn_temperature=learn_temperature,
                     preprocessor=image_text_preprocessor(SCENE_VOCABULARY, SCENE_CAPTION_LENGTH,
                                                          image_encoder.input_shape[1:]) if split else None,
                     name=name)


def clip_dataset(data, batch_size: int = 64, shuffle: bool = False, seed: int = 0):
    """A `tf.data` dataset of `{"image", "text"}` dicts, no labels: `to_dataset(data, label_keys=())`."""
    from mmkeras.data import to_dataset

    return to_dataset(data, modalities=["image", "text"], label_keys=(), batch_size=batch_size, shuffle=shuffle,
                      seed=seed)


def retrieval_recall(similarity, ks=(1, 5, 10), ids=None, query_ids=None) -> dict:
    """Recall@k of a retrieval: the share of queries whose right item is among the k best-scored gallery items.

    `similarity[i, j]` scores query i against gallery item j; the right item of query i is item i (a paired
    gallery). Pass the transpose for the other direction. With `ids` (one id per gallery item, e.g.
    `mmkeras.data.scenes.description_ids`), any gallery item with the query's id counts as right; the queries'
    ids are `query_ids`, by default `ids[:n_queries]` (the paired gallery again).

    Ties: the order among items with equal scores is taken as random, and the *expected* recall is returned.
    If g wrong items score higher than the best right one, m wrong items tie with it and c right items share
    that score, the hit probability at k is `1 - C(m, k - g) / C(m + c, k - g)` (0 when k <= g), which with
    one right item is `(k - g) / (m + 1)`, capped at 1. So a constant similarity scores chance, k / n, and a
    model that gives two equal captions equal scores scores the gallery's `retrieval_ceiling`.

    Args:
        similarity: array `(n_queries, n_gallery)`, `n_gallery >= n_queries`.
        ks: int or tuple of int. Each k in `[1, n_gallery]`. Defaults to `(1, 5, 10)`.
        ids: array `(n_gallery,)` or None. Item ids; defaults to every item its own id.
        query_ids: array `(n_queries,)` or None. The id each query looks for. Defaults to `ids[:n_queries]`;
            with queries that are not paired with the first gallery items (e.g. distinct captions), pass them.

    Returns:
        `{k: recall}` with floats in [0, 1].

    Example:
    >>> s = np.array([[0.9, 0.1, 0.0], [0.8, 0.5, 0.1], [0.2, 0.2, 0.2]])
    >>> {k: round(v, 3) for k, v in retrieval_recall(s, ks=(1, 2)).items()}  # row 2: a three-way tie
    {1: 0.444, 2: 0.889}
    """
    s = np.asarray(similarity, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] == 0 or s.shape[1] < s.shape[0]:
        raise ValueError(f"`similarity` must be (n_queries, n_gallery) with n_gallery >= n_queries > 0. "
                         f"Received: shape={s.shape}")
    n_queries, n_gallery = s.shape
    ks = (ks,) if isinstance(ks, (int, np.integer)) else tuple(ks)
    if not ks:
        raise ValueError(f"`ks` must name at least one k. Received: ks={ks!r}")
    for k in ks:
        check_int("k", k)
        if k > n_gallery:
            raise ValueError(f"Every k must be at most the gallery size {n_gallery}. Received: ks={ks!r}")
    ids = np.arange(n_gallery) if ids is None else np.asarray(ids).reshape(-1)
    if len(ids) != n_gallery:
        raise ValueError(f"`ids` must hold one id per gallery item ({n_gallery}). Received: {len(ids)} ids")
    query_ids = ids[:n_queries] if query_ids is None else np.asarray(query_ids).reshape(-1)
    if len(query_ids) != n_queries:
        raise ValueError(f"`query_ids` must hold one id per query ({n_queries}). Received: {len(query_ids)} ids")
    if not np.all(np.isin(query_ids, ids)):
        raise ValueError(f"Every query id must occur in `ids` (the gallery), or no item is right. "
                         f"Received: query ids {sorted(set(query_ids.tolist()) - set(ids.tolist()))[:8]} not in ids")
    hits = {int(k): np.zeros(n_queries) for k in ks}
    for i in range(n_queries):
        right = ids == query_ids[i]  # (n_gallery,): the items that count as right
        best = s[i, right].max()
        g = int(np.sum(s[i, ~right] > best))
        m = int(np.sum(s[i, ~right] == best))
        c = int(np.sum(s[i, right] == best))
        for k in hits:
            r = k - g
            hits[k][i] = 0.0 if r <= 0 else (1.0 if r > m else 1.0 - math.comb(m, r) / math.comb(m + c, r))
    return {k: float(v.mean()) for k, v in hits.items()}


def bidirectional_recall(similarity, ks=(1, 5, 10), ids=None) -> dict:
    """`{"image->text": {k: recall}, "text->image": {k: recall}}` of a square image-by-caption similarity."""
    s = np.asarray(similarity)
    return {"image->text": retrieval_recall(s, ks, ids), "text->image": retrieval_recall(s.T, ks, ids)}


def scene_prompts() -> tuple[list[str], dict]:
    """All 540 scene descriptions as prompts, with the attribute ids of each: `(captions, {attribute: ids})`.

    Example:
    >>> captions, labels = scene_prompts()
    >>> len(captions), captions[0], int(labels["position"][1])
    (540, 'a small red circle at the top left', 1)
    """
    from mmkeras.data.scenes import SCENE_ATTRIBUTES, SCENE_VALUES, describe

    combos = list(itertools.product(*(range(len(SCENE_VALUES[a])) for a in SCENE_ATTRIBUTES)))
    captions = [describe(*c) for c in combos]
    labels = {a: np.array([c[i] for c in combos], dtype=np.int32) for i, a in enumerate(SCENE_ATTRIBUTES)}
    return captions, labels


def zero_shot_attributes(model: CLIPModel, images, prompts=None, prompt_labels=None, batch_size: int = 256) -> dict:
    """Predicts each attribute of images by scoring them against captions, with no classifier trained.

    `p(prompt | image) = softmax_j(exp(t) * cos(image, prompt_j))` over all prompts (by default every one of
    the 540 scene descriptions, `scene_prompts()`); the probability of an attribute value is the sum over the
    prompts that have it, `p(color = red | image) = sum_{j: color_j = red} p(prompt_j | image)`, and the
    prediction is its argmax.

    Args:
        model: CLIPModel. A trained dual encoder.
        images: array `(n, h, w, c)`.
        prompts: list of str or None. The captions to score. Defaults to `scene_prompts()`.
        prompt_labels: dict `{attribute: ids}` or None, one id per prompt (required with `prompts`).
        batch_size: int. Encoding batch size. Defaults to `256`.

    Returns:
        `{attribute: (predicted ids (n,), probabilities (n, values))}`.
    """
    if prompts is None:
        prompts, prompt_labels = scene_prompts()
    if not isinstance(prompt_labels, dict) or not prompt_labels:
        raise ValueError(f"`prompt_labels` must be a dict {{attribute: one id per prompt}}. "
                         f"Received: prompt_labels={prompt_labels!r}")
    for name, ids in prompt_labels.items():
        if len(ids) != len(prompts):
            raise ValueError(f"prompt_labels[{name!r}] must hold one id per prompt ({len(prompts)}). "
                             f"Received: {len(ids)} ids")
    logits = model.logit_scale * model.similarity(images, prompts, batch_size)  # (n, prompts)
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p = p / p.sum(axis=1, keepdims=True)  # (n, prompts): softmax over the prompts
    results = {}
    for name, ids in prompt_labels.items():
        ids = np.asarray(ids, dtype=np.int64)
        marginal = p @ np.eye(int(ids.max()) + 1)[ids]  # (n, values): sum over the prompts with each value
        results[name] = (marginal.argmax(axis=1), marginal)
    return results


def train_clip(train, epochs: int = 20, batch_size: int = 64, learning_rate: float = 2e-3, seed: int = 0,
               validation=None, verbose=0, **model_kwargs):
    """Builds `build_clip_model(**model_kwargs)` and fits it on `train` (the notebook's recipe).

    The step size follows a cosine decay to zero over the run. Returns `(model, history dict)`.
    """
    seed_everything(seed)
    model = build_clip_model(**model_kwargs)
    steps = epochs * math.ceil(len(train) / batch_size)
    model.compile(optimizer=course_optimizer(learning_rate, total_steps=max(steps, 1)), run_eagerly=is_smoke())
    val = None if validation is None else clip_dataset(validation, batch_size)
    history = model.fit(clip_dataset(train, batch_size, shuffle=True, seed=seed), validation_data=val,
                        epochs=epochs, verbose=verbose, shuffle=False)  # the dataset shuffles itself
    return model, history.history


BENCH_SIZES = {"full": (4000, 500, 500), "smoke": (256, 32, 100)}
BENCH_EPOCHS = {"full": 20, "smoke": 1}


def bench(smoke: bool | None = None, progress: bool = False) -> dict:
    """Trains the notebook's dual encoder on the scenes and measures retrieval on 100 held-out pairs.

    Returns:
        `{"i2t_recall@1", "t2i_recall@1", "chance", "ceiling", "seconds"}`: recall@1 both ways on the first
        100 test pairs, chance `1 / 100`, the gallery's `retrieval_ceiling`, and the wall-clock seconds of
        training and evaluation.
    """
    from mmkeras.data.scenes import load_scene_splits, retrieval_ceiling

    mode = "smoke" if (is_smoke() if smoke is None else check_bool("smoke", smoke)) else "full"
    splits = load_scene_splits(*BENCH_SIZES[mode])
    test = splits["test"]
    start = time.perf_counter()
    model, _ = train_clip(splits["train"], epochs=BENCH_EPOCHS[mode], verbose=1 if progress else 0)
    images, texts = test.features["image"][:100], [str(t) for t in test.features["text"][:100]]  # the gallery
    recall = bidirectional_recall(model.similarity(images, texts), ks=(1,))
    seconds = time.perf_counter() - start
    return {"i2t_recall@1": recall["image->text"][1], "t2i_recall@1": recall["text->image"][1], "chance": 1 / 100,
            "ceiling": retrieval_ceiling({k: v[:100] for k, v in test.labels.items()}), "seconds": seconds}
