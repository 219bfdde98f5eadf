"""Text feature extractors: caption string -> tokens -> embeddings -> a feature vector.

Three variants, one input (`"text"`, a batch of strings) and the tokenizer inside the model, so a saved model
takes raw captions:

* `build_text_encoder(kind="rnn")`: `TextVectorization` -> `Embedding` -> bidirectional GRU (the seeds' RNN
  text extractor);
* `build_text_encoder(kind="transformer")`: `TextVectorization` -> keras-hub `TokenAndPositionEmbedding` ->
  keras-hub `TransformerEncoder` -> masked mean pooling;
* `build_bert_text_encoder(preset)`: a keras-hub BERT preset (tokenizer + backbone), features = the pooled
  [CLS] vector. With `preset=None` it builds a tiny randomly initialised BERT on the course vocabulary, so it
  runs offline; with a preset name such as `"bert_tiny_en_uncased"` (internet) or a local preset folder it
  loads the pretrained weights.

String inputs and `TextVectorization` make these encoders TensorFlow-backend models (tf.data feeds them).
"""

from __future__ import annotations

import keras
import keras_hub
import tensorflow as tf  # noqa: F401 (used in the docstring examples)
from keras import layers

from mmkeras.data.synthetic import TEXT_LENGTH, VOCABULARY
from mmkeras.encoders._checks import choice, fraction, positive_int

BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def build_text_encoder(
    kind: str = "rnn",
    vocabulary=VOCABULARY,
    sequence_length: int = TEXT_LENGTH,
    embedding_dim: int = 32,
    hidden_dim: int = 32,
    num_heads: int = 2,
    dropout: float = 0.1,
    sequence_output: bool = False,
    name: str = "text_encoder",
) -> keras.Model:
    """Builds a caption encoder: string -> token ids -> embeddings -> features.

    RNN (`kind="rnn"`): with embeddings `e_t = E[w_t]`, a bidirectional GRU reads the caption both ways,
    `h_t = [GRU_fwd(e_1..e_t); GRU_bwd(e_T..e_t)]`, and the features are the final states of both directions
    (dimension `2 * hidden_dim`).
    Transformer (`kind="transformer"`): `x_t = E[w_t] + P[t]`, one encoder block
    `x = LN(x + MHA(x, x)); x = LN(x + FFN(x))`, then the mean over the non-padding tokens.

    Args:
        kind: str. `"rnn"` or `"transformer"`. Defaults to `"rnn"`.
        vocabulary: list of str. The fixed vocabulary of `TextVectorization`. Defaults to the course's.
        sequence_length: int. Captions are padded/cut to this many tokens. Defaults to `12`.
        embedding_dim: int. Size of the token embeddings. Defaults to `32`.
        hidden_dim: int. GRU units per direction, or the Transformer's feed-forward size. Defaults to `32`.
        num_heads: int. Attention heads of the Transformer variant. Defaults to `2`.
        dropout: float. Dropout rate in [0, 1). Defaults to `0.1`.
        sequence_output: bool. Return the per-token features `(batch, sequence_length, dim)` instead of one
            vector. Defaults to `False`.
        name: str. The model's name. Defaults to `"text_encoder"`.

    Returns:
        A functional `keras.Model` with input `"text"` (batch,) string.

    Example:
    >>> encoder = build_text_encoder()
    >>> encoder(keras.ops.convert_to_tensor(["a red toy moves to the left"])).shape
    TensorShape([1, 64])
    """
    choice("kind", kind, ("rnn", "transformer"))
    for arg, value in (("sequence_length", sequence_length), ("embedding_dim", embedding_dim),
                       ("hidden_dim", hidden_dim), ("num_heads", num_heads)):
        positive_int(arg, value)
    fraction("dropout", dropout)
    if not vocabulary or isinstance(vocabulary, str):
        raise ValueError(f"`vocabulary` must be a non-empty list of words. Received: vocabulary={vocabulary!r}")

    text = keras.Input(shape=(), dtype="string", name="text")  # (batch,)
    vectorizer = layers.TextVectorization(
        vocabulary=list(vocabulary), output_sequence_length=sequence_length, name="text_vectorizer"
    )
    token_ids = vectorizer(text)  # (batch, L); 0 = padding, 1 = out of vocabulary
    vocab_size = vectorizer.vocabulary_size()
    if kind == "rnn":
        x = layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="token_embedding")(token_ids)
        x = layers.Dropout(dropout, name="embedding_dropout")(x)  # (batch, L, embedding_dim)
        gru = layers.GRU(hidden_dim, return_sequences=sequence_output, name="gru")
        features = layers.Bidirectional(gru, name="bi_gru")(x)  # (batch, 2H) or (batch, L, 2H)
    else:
        x = keras_hub.layers.TokenAndPositionEmbedding(
            vocabulary_size=vocab_size, sequence_length=sequence_length, embedding_dim=embedding_dim,
            mask_zero=True, name="token_and_position_embedding",
        )(token_ids)  # (batch, L, embedding_dim), carries the padding mask
        x = keras_hub.layers.TransformerEncoder(
            intermediate_dim=hidden_dim, num_heads=num_heads, dropout=dropout, name="transformer_encoder"
        )(x)  # (batch, L, embedding_dim)
        features = x if sequence_output else layers.GlobalAveragePooling1D(name="mean_pool")(x)  # mask-aware
    return keras.Model(text, features, name=name)


def bert_vocabulary(words=VOCABULARY) -> list[str]:
    """The course vocabulary with BERT's special tokens first, for a tiny offline BERT."""
    return list(BERT_SPECIAL_TOKENS) + [w for w in words if w not in BERT_SPECIAL_TOKENS]


@keras.saving.register_keras_serializable(package="mmkeras")
class BertTextEncoder(keras.Model):
    """A keras-hub BERT preprocessor + backbone as one model: caption strings in, [CLS] features out.

    BERT reads `[CLS] w_1 ... w_n [SEP]` through Transformer encoder blocks; the features are the pooled
    [CLS] vector `h = tanh(W h_[CLS] + b)` (`pooled_output` of `keras_hub.models.BertBackbone`).

    Why a subclass and not a functional graph: a keras-hub tokenizer keeps its vocabulary in the saved
    model's assets, which are restored only after the graph is rebuilt; this model declares its output
    shape (`compute_output_spec`) so that rebuilding never runs the tokenizer, and `.keras` files load.

    Args:
        backbone: keras_hub.models.Backbone. A BERT backbone (anything with a `"pooled_output"`).
        preprocessor: keras_hub.models.Preprocessor. Maps strings to `token_ids`, `segment_ids`,
            `padding_mask`.
        **kwargs: passed on to `keras.Model` (e.g. `name`).

    Example:
    >>> encoder = build_bert_text_encoder()  # a BertTextEncoder around a tiny random BERT
    >>> encoder(tf.constant(["a red toy moves to the left"])).shape
    TensorShape([1, 32])
    """

    def __init__(self, backbone, preprocessor, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.preprocessor = preprocessor

    def build(self, input_shape=None):
        # The backbone is built on construction; the preprocessor builds itself on its first call (after a
        # saved model's tokenizer vocabulary is restored). Nothing to trace here.
        self.built = True

    def call(self, text, training=None):
        tokens = self.preprocessor(text)  # {"token_ids", "segment_ids", "padding_mask"}: (batch, length)
        return self.backbone(tokens, training=training)["pooled_output"]  # (batch, hidden_dim)

    def compute_output_spec(self, text, training=None):
        return keras.KerasTensor((text.shape[0], self.backbone.hidden_dim), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        preprocessor = keras.saving.serialize_keras_object(self.preprocessor)
        # Loading must not build the preprocessor before its tokenizer's vocabulary (an asset) is back:
        # without a build config it builds itself on the first call, with the vocabulary in place.
        preprocessor.pop("build_config", None)
        config.update({"backbone": keras.saving.serialize_keras_object(self.backbone), "preprocessor": preprocessor})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        config["preprocessor"] = keras.saving.deserialize_keras_object(config["preprocessor"])
        return cls(**config)


def build_bert_text_encoder(
    preset: str | None = None,
    sequence_length: int = 16,
    trainable: bool = True,
    tiny_config: dict | None = None,
    name: str = "bert_text_encoder",
) -> BertTextEncoder:
    """Builds a BERT caption encoder from keras-hub (features: the pooled [CLS] vector).

    Args:
        preset: str or None. A keras-hub preset name (e.g. `"bert_tiny_en_uncased"`, downloaded once and
            cached), or the path of a local preset folder (made by `save_to_preset`). `None` builds a tiny,
            randomly initialised BERT on the course vocabulary: no download, for learning the plumbing.
            Defaults to `None`.
        sequence_length: int. Token ids per caption, `[CLS]` and `[SEP]` included. Defaults to `16`.
        trainable: bool. `False` freezes the backbone (feature extraction). Defaults to `True`.
        tiny_config: dict or None. Overrides of the tiny BERT's sizes (`num_layers`, `num_heads`, `hidden_dim`,
            `intermediate_dim`) when `preset=None`.
        name: str. The model's name. Defaults to `"bert_text_encoder"`.

    Returns:
        A `BertTextEncoder`: input a batch of strings `(batch,)`, output `(batch, hidden_dim)`.

    Example:
    >>> encoder = build_bert_text_encoder()  # tiny, random, offline
    >>> encoder(tf.constant(["a red toy moves to the left"])).shape
    TensorShape([1, 32])
    """
    positive_int("sequence_length", sequence_length)
    if preset is None:
        sizes = {"num_layers": 1, "num_heads": 2, "hidden_dim": 32, "intermediate_dim": 64}
        unknown = set(tiny_config or {}) - set(sizes)
        if unknown:
            raise ValueError(f"`tiny_config` accepts the keys {sorted(sizes)}. Received: tiny_config={tiny_config!r}")
        sizes.update(tiny_config or {})
        vocabulary = bert_vocabulary()
        tokenizer = keras_hub.tokenizers.BertTokenizer(vocabulary=vocabulary, lowercase=True)
        preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
        backbone = keras_hub.models.BertBackbone(
            vocabulary_size=len(vocabulary), max_sequence_length=sequence_length, **sizes
        )
    else:
        if not isinstance(preset, str) or not preset:
            raise ValueError(f"`preset` must be a preset name, a preset folder or None. Received: preset={preset!r}")
        preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(preset, sequence_length=sequence_length)
        backbone = keras_hub.models.Backbone.from_preset(preset)
    backbone.trainable = trainable
    return BertTextEncoder(backbone, preprocessor, name=name)
