"""Image captioning (图像描述): a CNN reads the picture, a Transformer decoder writes the caption word by word.

    image -> CNN -> a 4x4 grid of image tokens (+ positions)                          (batch, 16, d)
    [start] w_1 ... w_{T-1} -> TokenAndPositionEmbedding -> TransformerDecoder:
        causal self-attention over the words so far, cross-attention to the image tokens
    -> Dense(vocabulary) = logits of the next word w_t                                 (batch, T, vocab)

Training maximises the likelihood `log p(caption | image) = sum_t log p(w_t | w_<t, image)` with teacher forcing:
the decoder reads the true previous words (`[start] w_1 .. w_n`) and is scored on the next ones
(`w_1 .. w_n [end]`), padding excluded. At test time it reads its own words: `greedy_decode` picks
`w_t = argmax_w p(w | w_<t, image)` until it writes `[end]` or reaches the maximum length.

The tokenizer (`CaptionTokenizer`) is plain Python, so it runs on any backend and saves as a list of words:
id 0 is padding, 1 is `[start]`, 2 is `[end]`, then the words of `SCENE_VOCABULARY` (sorted), split on spaces.
There is no out-of-vocabulary token: the scenes' captions use a closed vocabulary, and an unknown word raises.

Metrics: `token_accuracy` (teacher-forced next-word accuracy, padding excluded), `corpus_bleu` (BLEU-4 of
Papineni et al. 2002, no smoothing), the share of exact captions, and per-attribute accuracy read back from the
generated caption (`parse_caption`): on these captions, "did it name the right color" says more than BLEU.
"""

from __future__ import annotations

import collections
import math
import time

import keras
import keras_hub
import numpy as np
from keras import layers

from mmkeras._validation import check_fraction, check_int, check_positive_ints, check_shape, check_words
from mmkeras.config import seed_everything
from mmkeras.data.scenes import (
    POSITION_PHRASES,
    SCENE_ATTRIBUTES,
    SCENE_CAPTION_LENGTH,
    SCENE_IMAGE_SIZE,
    SCENE_POSITIONS,
    SCENE_VALUES,
    SCENE_VOCABULARY,
)
from mmkeras.encoders.image_tokens import build_image_token_encoder
from mmkeras.encoders.masking import PaddingMask
from mmkeras.optimizers import course_optimizer
from mmkeras.task import TaskModel

PADDING, START, END = "", "[start]", "[end]"
SPECIAL_TOKENS = (PADDING, START, END)
"""Ids 0, 1, 2 of every `CaptionTokenizer`: padding, start of caption, end of caption."""


class CaptionTokenizer:
    """Caption strings <-> token ids over a fixed word list: `[start] w_1 ... w_n [end]`, padded with 0.

    Ids: 0 = padding `""`, 1 = `[start]`, 2 = `[end]`, then `words` in the order given. Captions are lowercased
    and split on whitespace; a word outside the list raises a `ValueError` (a closed vocabulary).

    Args:
        words: list of str. The caption words. Defaults to `SCENE_VOCABULARY`.
        sequence_length: int. `T`, the length of the decoder's input and target: a caption of up to `T - 1` words
            plus `[start]` (input) or `[end]` (target). Defaults to `SCENE_CAPTION_LENGTH + 1` (9).

    Example:
    >>> tokenizer = CaptionTokenizer(["a", "red", "circle"], sequence_length=4)
    >>> inputs, targets = tokenizer.teacher_forcing(["a red circle"])
    >>> inputs.tolist(), targets.tolist()
    ([[1, 3, 4, 5]], [[3, 4, 5, 2]])
    >>> tokenizer.decode([[3, 5, 2, 0]])
    ['a circle']
    """

    def __init__(self, words=SCENE_VOCABULARY, sequence_length: int = SCENE_CAPTION_LENGTH + 1):
        words = check_words("words", words)
        clash = [w for w in words if w in SPECIAL_TOKENS or any(c.isspace() for c in w)]
        if clash:
            raise ValueError(f"`words` must not contain special tokens {SPECIAL_TOKENS} or spaces. Received: {clash}")
        self.words = list(words)
        self.sequence_length = check_int("sequence_length", sequence_length, minimum=2)
        self.vocabulary = list(SPECIAL_TOKENS) + self.words
        self.index = {w: i for i, w in enumerate(self.vocabulary)}

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    def encode(self, captions) -> np.ndarray:
        """`[start] w_1 ... w_n [end]` ids, padded with 0 to `sequence_length + 1`: `(batch, T + 1)` int32."""
        captions = [captions] if isinstance(captions, str) else list(captions)
        ids = np.zeros((len(captions), self.sequence_length + 1), dtype=np.int32)
        for row, caption in enumerate(captions):
            words = str(caption).lower().split()
            if len(words) > self.sequence_length - 1:
                raise ValueError(f"Captions may have at most sequence_length - 1 = {self.sequence_length - 1} words. "
                                 f"Received: {caption!r} ({len(words)} words)")
            unknown = [w for w in words if w not in self.index or w in SPECIAL_TOKENS]
            if unknown:
                raise ValueError(f"Words outside the vocabulary: {unknown}. Received: caption={caption!r}")
            tokens = [self.index[START]] + [self.index[w] for w in words] + [self.index[END]]
            ids[row, :len(tokens)] = tokens
        return ids

    def teacher_forcing(self, captions):
        """The decoder's input `[start] w_1 .. w_n` and target `w_1 .. w_n [end]`, both `(batch, T)` int32."""
        ids = self.encode(captions)
        return ids[:, :-1], ids[:, 1:]

    def decode(self, ids) -> list[str]:
        """Token ids back to captions: `[start]` is skipped, reading stops at `[end]` or padding."""
        captions = []
        for row in np.asarray(ids).reshape(len(ids), -1):
            words = []
            for i in row.tolist():
                if i in (0, 2):  # padding or [end]
                    break
                if i != 1:
                    words.append(self.vocabulary[i])
            captions.append(" ".join(words))
        return captions

    def get_config(self) -> dict:
        return {"words": list(self.words), "sequence_length": self.sequence_length}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="mmkeras")
class MaskedTokenAccuracy(keras.metrics.Metric):
    """Next-token accuracy over the real tokens only: `sum_t [argmax l_t = y_t] m_t / sum_t m_t`, `m_t = y_t != 0`.

    Args:
        padding_id: int. The target id that does not count. Defaults to `0`.
        name: str. Defaults to `"token_accuracy"`.

    Example:
    >>> metric = MaskedTokenAccuracy()
    >>> metric.update_state([[3, 2, 0]], [[[0, 0, 0, 9], [0, 0, 9, 0], [9, 0, 0, 0]]])
    >>> float(metric.result())
    1.0
    """

    def __init__(self, padding_id=0, name="token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.padding_id = check_int("padding_id", padding_id, minimum=0)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = keras.ops.cast(y_true, "int32")  # (batch, T)
        predicted = keras.ops.cast(keras.ops.argmax(y_pred, axis=-1), "int32")  # (batch, T)
        real = keras.ops.cast(keras.ops.not_equal(y_true, self.padding_id), "float32")  # (batch, T)
        hits = keras.ops.cast(keras.ops.equal(predicted, y_true), "float32") * real
        self.correct.assign_add(keras.ops.sum(hits))
        self.count.assign_add(keras.ops.sum(real))

    def result(self):
        return self.correct / keras.ops.maximum(self.count, 1.0)

    def get_config(self):
        return super().get_config() | {"padding_id": self.padding_id}


@keras.saving.register_keras_serializable(package="mmkeras")
class CaptionModel(TaskModel):
    """A captioning model: a CNN's grid of image tokens, read by a Transformer decoder that predicts the next word.

    With image tokens `V = CNN(image) + P_img` `(batch, 16, d)` and word embeddings `x_t = E[w_t] + P[t]`, each
    keras-hub `TransformerDecoder` block computes

        x = LN(x + CausalSelfAttention(x))         word t sees the words up to t only
        x = LN(x + CrossAttention(x, V))           A = softmax(Q K^T / sqrt(d_k)), Q from words, K, V from the image
        x = LN(x + FFN(x))

    and `logits_t = W x_t + b`, `p(w_{t+1} | w_<=t, image) = softmax(logits_t)`. Trained on
    `-sum_t log p(w_t | w_<t, image)` over the real tokens (`compile()`'s default: sparse cross-entropy with
    `ignore_class=0`).

    Args:
        words: list of str. The caption words (the tokenizer adds padding, `[start]`, `[end]`).
            Defaults to `SCENE_VOCABULARY`.
        sequence_length: int. `T`, decoder positions: captions up to `T - 1` words. Defaults to `9`.
        image_shape: tuple. Defaults to `(32, 32, 3)`.
        filters: tuple of int. The CNN's blocks (`build_image_token_encoder`). Defaults to `(16, 32, 64)`.
        hidden_dim: int. Width `d` of words and image tokens. Defaults to `64`.
        intermediate_dim: int. Feed-forward width of the decoder. Defaults to `128`.
        num_heads: int. Attention heads. Defaults to `2`.
        num_layers: int. Decoder blocks. Defaults to `1`.
        dropout: float. Dropout in the decoder. Defaults to `0.1`.
        **kwargs: passed on to `keras.Model` (e.g. `name`).

    Inputs: `{"image": (batch, 32, 32, 3), "tokens": (batch, T) int32}`. Output: logits `(batch, T, vocabulary)`.

    Example:
    >>> model = CaptionModel(filters=(4, 8), hidden_dim=8, intermediate_dim=8)
    >>> inputs, targets = model.tokenizer.teacher_forcing(["a small red cross at the top left"])
    >>> tuple(model({"image": np.zeros((1, 32, 32, 3), "float32"), "tokens": inputs}).shape)
    (1, 9, 26)
    >>> len(model.generate(np.zeros((2, 32, 32, 3), "float32")))
    2
    """

    def __init__(self, words=SCENE_VOCABULARY, sequence_length=SCENE_CAPTION_LENGTH + 1,
                 image_shape=(SCENE_IMAGE_SIZE, SCENE_IMAGE_SIZE, 3), filters=(16, 32, 64), hidden_dim=64,
                 intermediate_dim=128, num_heads=2, num_layers=1, dropout=0.1, **kwargs):
        tokenizer = CaptionTokenizer(words, sequence_length)
        image_shape = check_shape("image_shape", image_shape, rank=3)
        filters = check_positive_ints("filters", filters)
        hidden_dim, intermediate_dim = check_int("hidden_dim", hidden_dim), check_int("intermediate_dim",
                                                                                        intermediate_dim)
        num_heads, num_layers = check_int("num_heads", num_heads), check_int("num_layers", num_layers)
        dropout = check_fraction("dropout", dropout)

        # === Functional graph ===
        image = keras.Input(shape=image_shape, name="image")
        tokens = keras.Input(shape=(tokenizer.sequence_length,), dtype="int32", name="tokens")
        image_encoder = build_image_token_encoder(image_shape, filters, token_dim=hidden_dim, name="image_encoder")
        visual = image_encoder(image)  # (batch, grid, hidden_dim)
        padding_mask = PaddingMask(0, name="padding_mask")(tokens)  # (batch, T): True on real tokens
        x = keras_hub.layers.TokenAndPositionEmbedding(
            vocabulary_size=tokenizer.vocabulary_size, sequence_length=tokenizer.sequence_length,
            embedding_dim=hidden_dim, name="token_and_position_embedding")(tokens)  # (batch, T, hidden_dim)
        for i in range(num_layers):
            x = keras_hub.layers.TransformerDecoder(intermediate_dim, num_heads, dropout=dropout,
                                                    name=f"transformer_decoder_{i + 1}")(
                x, encoder_sequence=visual, decoder_padding_mask=padding_mask)  # causal: (batch, T, hidden_dim)
        logits = layers.Dense(tokenizer.vocabulary_size, dtype="float32", name="next_token")(x)  # (batch, T, vocab)
        super().__init__(inputs={"image": image, "tokens": tokens}, outputs=logits, **kwargs)

        # === Config ===
        self.tokenizer = tokenizer
        self.image_encoder = image_encoder
        self.words = tokenizer.words
        self.sequence_length = tokenizer.sequence_length
        self.image_shape = image_shape
        self.filters = filters
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.dropout = dropout

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """Configures training: by default Adam(1e-3), `-mean_{real t} log softmax(logits_t)[w_t]`, token accuracy.

        The loss is `SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)`: padding targets count for
        nothing, and the mean is over the real tokens.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(1e-3)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
        if metrics == "auto":
            metrics = [MaskedTokenAccuracy(name="token_accuracy")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def teacher_forcing_data(self, data) -> tuple[dict, np.ndarray]:
        """`(inputs, targets)` for `fit`/`evaluate` from a split of the captioned scenes (or `(images, captions)`)."""
        images, captions = _images_and_captions(data)
        inputs, targets = self.tokenizer.teacher_forcing(captions)
        return {"image": images, "tokens": inputs}, targets

    def generate_ids(self, images, max_length: int | None = None, batch_size: int = 256) -> np.ndarray:
        """Greedy decoding on a batch of images: the generated ids `(n, max_length)` (`[end]` included, then 0)."""
        images = np.asarray(images, dtype="float32")
        if images.ndim != 4:
            raise ValueError(f"`images` must be (batch, height, width, channels). Received: shape {images.shape}")
        batch_size = check_int("batch_size", batch_size)
        max_length = self.sequence_length if max_length is None else max_length
        chunks = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]

            def next_token_logits(ids, chunk=chunk):
                return keras.ops.convert_to_numpy(self({"image": chunk, "tokens": ids}, training=False))

            chunks.append(greedy_decode(next_token_logits, len(chunk), self.sequence_length, max_length))
        return np.concatenate(chunks) if chunks else np.zeros((0, max_length), np.int32)

    def generate(self, images, max_length: int | None = None, batch_size: int = 256) -> list[str]:
        """Greedy captions of a batch of images, as strings (`[end]` and padding removed)."""
        return self.tokenizer.decode(self.generate_ids(images, max_length, batch_size))

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "words": list(self.words),
                "sequence_length": self.sequence_length, "image_shape": list(self.image_shape),
                "filters": list(self.filters), "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim, "num_heads": self.num_heads,
                "num_layers": self.num_layers, "dropout": self.dropout}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def greedy_decode(next_token_logits, batch_size: int, sequence_length: int, max_length: int | None = None,
                  start_id: int = 1, end_id: int = 2, padding_id: int = 0) -> np.ndarray:
    """Greedy decoding (贪心解码): `w_t = argmax_w p(w | w_<t, image)`, one word at a time, in NumPy.

    The decoder input starts as `[start]` followed by padding; at step t the logits at position t give the next
    word, which is written at position t + 1. A caption is finished once it has written `[end]`; after that
    it writes padding. The loop stops when every caption is finished or after `max_length` words. Padding and
    `[start]` are never chosen.

    Args:
        next_token_logits: function `ids (batch, sequence_length) -> logits (batch, sequence_length, vocabulary)`
            (a causal decoder: the logits at t depend on ids up to t only).
        batch_size: int. Captions to write.
        sequence_length: int. `T`, the decoder's input length.
        max_length: int or None. At most this many generated tokens (`[end]` included), `<= T`. Defaults to `T`.
        start_id, end_id, padding_id: int. Defaults to 1, 2, 0.

    Returns:
        The generated ids `(batch, max_length)` int32: words, then `[end]` (if reached), then `padding_id`.

    Example:
    >>> def always_end(ids):  # a "model" that always says [end]
    ...     return np.eye(4)[np.full(ids.shape, 2)]
    >>> greedy_decode(always_end, batch_size=1, sequence_length=5).tolist()
    [[2, 0, 0, 0, 0]]
    """
    batch_size, sequence_length = check_int("batch_size", batch_size, minimum=0), check_int("sequence_length",
                                                                                            sequence_length)
    max_length = sequence_length if max_length is None else check_int("max_length", max_length)
    if max_length > sequence_length:
        raise ValueError(f"`max_length` must be <= sequence_length = {sequence_length} (the decoder has that many "
                         f"positions). Received: max_length={max_length}")
    ids = np.full((batch_size, sequence_length), padding_id, dtype=np.int32)  # (batch, T)
    ids[:, 0] = start_id
    generated = np.full((batch_size, max_length), padding_id, dtype=np.int32)  # (batch, max_length)
    done = np.zeros(batch_size, dtype=bool)
    for t in range(max_length):
        if done.all():
            break
        logits = np.array(next_token_logits(ids), dtype=np.float64)[:, t]  # (batch, vocabulary)
        logits[:, [padding_id, start_id]] = -np.inf  # never padding or [start]
        word = np.where(done, padding_id, logits.argmax(axis=-1)).astype(np.int32)  # (batch,)
        generated[:, t] = word
        done |= word == end_id
        if t + 1 < sequence_length:
            ids[:, t + 1] = word
    return generated


# === Metrics ===

def token_accuracy(targets, predictions, padding_id: int = 0) -> float:
    """Teacher-forced next-token accuracy over the real tokens: `sum [pred_t = y_t][y_t != pad] / sum [y_t != pad]`.

    Args:
        targets: int array `(batch, T)`.
        predictions: int array `(batch, T)` of predicted ids, or logits `(batch, T, vocabulary)`.
        padding_id: int. Defaults to `0`.

    Example:
    >>> token_accuracy([[5, 2, 0, 0]], [[5, 3, 2, 2]])  # 1 of the 2 real tokens; padding ignored
    0.5
    """
    targets, predictions = np.asarray(targets), np.asarray(predictions)
    if predictions.ndim == targets.ndim + 1:
        predictions = predictions.argmax(axis=-1)
    if predictions.shape != targets.shape:
        raise ValueError(f"`predictions` must be ids shaped like `targets` {targets.shape} or logits with one more "
                         f"axis. Received: shape {predictions.shape}")
    real = targets != padding_id
    if not real.any():
        raise ValueError(f"`targets` hold only padding ({padding_id}): no token to score")
    return float(((predictions == targets) & real).sum() / real.sum())


def _ngrams(words, n) -> collections.Counter:
    return collections.Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def bleu_statistics(references, hypotheses, max_order: int = 4) -> dict:
    """Corpus BLEU (Papineni, Roukos, Ward, Zhu 2002) and its parts, with no smoothing.

        p_n = sum_hyp sum_g min(count_hyp(g), max_ref count_ref(g)) / sum_hyp sum_g count_hyp(g)   (n-grams g)
        BP = 1 if c > r else exp(1 - r / c)      c: total hypothesis length, r: total closest reference length
        BLEU = BP * exp(sum_{n=1}^{N} (1/N) log p_n)                     (0 if some p_n = 0: no smoothing)

    Counts are summed over the whole corpus before dividing (corpus BLEU, not a mean of sentence BLEUs); a
    hypothesis n-gram counts at most as often as it appears in its reference ("clipped" counts). Words are the
    whitespace-split, lowercased captions. This is the definition of `nltk`'s `corpus_bleu` and `sacrebleu`
    without smoothing or extra tokenization.

    Args:
        references: list. One reference caption (str) per hypothesis, or a list of references per hypothesis
            (the clipping then uses the largest count over them, `r` the reference length closest to the
            hypothesis', the shorter one on ties).
        hypotheses: list of str. The generated captions.
        max_order: int. `N`, the longest n-gram. Defaults to `4` (BLEU-4).

    Returns:
        `{"bleu", "precisions" (p_1 .. p_N), "brevity_penalty", "hypothesis_length" (c), "reference_length" (r)}`.

    Example:
    >>> stats = bleu_statistics(["a red square at the top"], ["a red circle at the top"], max_order=3)
    >>> [round(p, 4) for p in stats["precisions"]], round(stats["bleu"], 4)  # (5/6 * 3/5 * 1/4) ** (1/3)
    ([0.8333, 0.6, 0.25], 0.5)
    """
    max_order = check_int("max_order", max_order)
    hypotheses = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    references = [references] if isinstance(references, str) else list(references)
    if len(references) != len(hypotheses) or not hypotheses:
        raise ValueError(f"Pass one reference (or list of references) per hypothesis, at least one. Received: "
                         f"{len(references)} references for {len(hypotheses)} hypotheses")
    matches, totals = np.zeros(max_order), np.zeros(max_order)
    c = r = 0
    for refs, hypothesis in zip(references, hypotheses):
        refs = [refs] if isinstance(refs, str) else list(refs)
        if not refs:
            raise ValueError(f"Every hypothesis needs at least one reference. Received: none for {hypothesis!r}")
        hyp = str(hypothesis).lower().split()
        ref_words = [str(ref).lower().split() for ref in refs]
        c += len(hyp)
        r += min((abs(len(ref) - len(hyp)), len(ref)) for ref in ref_words)[1]  # closest length, shorter on ties
        for n in range(1, max_order + 1):
            counts = _ngrams(hyp, n)
            most = collections.Counter()
            for ref in ref_words:
                most |= _ngrams(ref, n)  # the largest count of each n-gram over the references
            matches[n - 1] += sum(min(k, most[g]) for g, k in counts.items())
            totals[n - 1] += max(0, len(hyp) - n + 1)
    precisions = [float(m / t) if t > 0 else 0.0 for m, t in zip(matches, totals)]
    if c == 0:
        brevity_penalty = 0.0
    else:
        brevity_penalty = 1.0 if c > r else math.exp(1 - r / c)
    bleu = 0.0 if min(precisions) == 0 else brevity_penalty * math.exp(sum(math.log(p) for p in precisions) / max_order)
    return {"bleu": float(bleu), "precisions": precisions, "brevity_penalty": float(brevity_penalty),
            "hypothesis_length": int(c), "reference_length": int(r)}


def corpus_bleu(references, hypotheses, max_order: int = 4) -> float:
    """Corpus BLEU-`max_order` (Papineni et al. 2002, no smoothing): see `bleu_statistics`.

    Example:
    >>> corpus_bleu(["a small red cross at the top left"], ["a small red cross at the top left"])
    1.0
    """
    return bleu_statistics(references, hypotheses, max_order)["bleu"]


_POSITION_OF = {phrase: SCENE_POSITIONS.index(name) for name, phrase in POSITION_PHRASES.items()}


def parse_caption(caption: str) -> dict:
    """The attribute ids a caption names: `{"shape", "color", "size", "position"}`, -1 where none is named.

    Shape, color and size are the first word of their kind in the caption; the position is the phrase the
    caption ends with ("at the top left", "on the right", ...).

    Example:
    >>> parse_caption("a small red cross at the top left")
    {'shape': 3, 'color': 0, 'size': 0, 'position': 0}
    >>> parse_caption("a red red")["shape"]
    -1
    """
    words = str(caption).lower().split()
    parsed = {}
    for name in ("shape", "color", "size"):
        found = [SCENE_VALUES[name].index(w) for w in words if w in SCENE_VALUES[name]]
        parsed[name] = found[0] if found else -1
    text = " " + " ".join(words)
    positions = [index for phrase, index in _POSITION_OF.items() if text.endswith(" " + phrase)]
    parsed["position"] = positions[0] if positions else -1
    return {name: parsed[name] for name in SCENE_ATTRIBUTES}


def caption_report(references, hypotheses) -> dict:
    """BLEU-4, the share of exact captions, and per-attribute accuracy of generated captions.

    Returns:
        `{"bleu", "exact_match", "shape", "color", "size", "position", "all_attributes"}`: an attribute counts as
        right when the generated caption names the reference's value (`parse_caption`).

    Example:
    >>> caption_report(["a small red cross at the top left"], ["a small blue cross at the top left"])["color"]
    0.0
    """
    references, hypotheses = list(references), list(hypotheses)
    report = {"bleu": corpus_bleu(references, hypotheses),
              "exact_match": float(np.mean([str(r) == str(h) for r, h in zip(references, hypotheses)]))}
    truth = [parse_caption(r) for r in references]
    said = [parse_caption(h) for h in hypotheses]
    right = {a: np.array([t[a] == s[a] and t[a] >= 0 for t, s in zip(truth, said)]) for a in SCENE_ATTRIBUTES}
    report.update({a: float(v.mean()) for a, v in right.items()})
    report["all_attributes"] = float(np.mean(np.all(list(right.values()), axis=0)))
    return report


def _images_and_captions(data):
    from mmkeras.data.schema import MultimodalData

    if isinstance(data, MultimodalData):
        return data.features["image"], [str(t) for t in data.features["text"]]
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return np.asarray(data[0], dtype="float32"), [str(t) for t in data[1]]
    raise ValueError(f"`data` must be a MultimodalData of the captioned scenes or a pair (images, captions). "
                     f"Received: {type(data).__name__}")


# === Training recipe ===

CAPTION_RECIPE = {
    "full": {"train_size": 3000, "test_size": 500, "epochs": 12, "batch_size": 64, "learning_rate": 2e-3},
    "smoke": {"train_size": 128, "test_size": 32, "epochs": 1, "batch_size": 32, "learning_rate": 2e-3},
}
"""The notebook's recipe for the caption model, full and smoke mode (`caption_recipe()` picks one)."""


def caption_recipe(smoke: bool | None = None) -> dict:
    """The notebook's sizes and training settings; `smoke=None` follows `MMKERAS_SMOKE`."""
    from mmkeras.config import is_smoke

    smoke = is_smoke() if smoke is None else bool(smoke)
    return dict(CAPTION_RECIPE["smoke" if smoke else "full"])


def train_caption_model(train, val=None, epochs: int = 12, batch_size: int = 64, learning_rate: float = 2e-3,
                        seed: int = 0, verbose=0, **model_kwargs):
    """Seeds, builds a `CaptionModel` and trains it with teacher forcing (Adam, cosine-decayed step size).

    Returns:
        `(model, history)`: the trained model and the Keras history dict (`loss`, `token_accuracy`, `val_...`).
    """
    epochs, batch_size = check_int("epochs", epochs), check_int("batch_size", batch_size)
    seed_everything(check_int("seed", seed, minimum=0))
    model = CaptionModel(**model_kwargs)
    x, y = model.teacher_forcing_data(train)
    steps = epochs * -(-len(y) // batch_size)
    model.compile(optimizer=course_optimizer(learning_rate, total_steps=steps))
    validation = model.teacher_forcing_data(val) if val is not None else None
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, validation_data=validation, shuffle=True,
                        verbose=verbose)
    return model, history.history


def bench(smoke: bool | None = None, progress: bool = False) -> dict:
    """Trains the caption model with the notebook's recipe and greedy-decodes the held-out test split.

    Returns:
        `{"token_accuracy": teacher-forced next-token accuracy on the test split, "bleu": corpus BLEU-4 of the
        greedy captions, "seconds": wall-clock of training + evaluation}`.
    """
    from mmkeras.data.scenes import load_scene_splits

    recipe = caption_recipe(smoke)
    splits = load_scene_splits(recipe["train_size"], 1, recipe["test_size"], seed=0)
    start = time.perf_counter()
    model, _ = train_caption_model(splits["train"], epochs=recipe["epochs"], batch_size=recipe["batch_size"],
                                   learning_rate=recipe["learning_rate"], seed=0, verbose=1 if progress else 0)
    test = splits["test"]
    x, y = model.teacher_forcing_data(test)
    accuracy = token_accuracy(y, model.predict(x, batch_size=256, verbose=0))
    generated = model.generate(test.features["image"])
    bleu = corpus_bleu([str(t) for t in test.features["text"]], generated)
    return {"token_accuracy": accuracy, "bleu": bleu, "seconds": time.perf_counter() - start}


__all__ = [
    "CAPTION_RECIPE",
    "CaptionModel",
    "CaptionTokenizer",
    "MaskedTokenAccuracy",
    "bench",
    "bleu_statistics",
    "caption_recipe",
    "caption_report",
    "corpus_bleu",
    "greedy_decode",
    "parse_caption",
    "token_accuracy",
    "train_caption_model",
]
