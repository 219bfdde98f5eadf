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

from mmkeras._validation import check_bool, check_choice, check_fraction, check_int, check_optional_int, check_words
from mmkeras.encoders.masking import PaddingMask, sequence_outputs

BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def learn_vocabulary(texts, max_tokens: int | None = None) -> list[str]:
    """The words of a corpus, most frequent first, as `TextVectorization` would split and lowercase them.

    Use it to build a text encoder for your own captions: `build_text_encoder(vocabulary=learn_vocabulary(
    train_captions))`. Learn it from the training split only, so that test words stay unseen as in real use.

    Args:
        texts: list or array of str. The training captions.
        max_tokens: int or None. Keep at most this many words. Defaults to `None` (all).

    Example:
    >>> learn_vocabulary(["A red toy", "a blue toy"])[:2]
    ['toy', 'a']
    """
    texts = check_words("texts", list(dict.fromkeys(str(t) for t in texts)) if not isinstance(texts, str) else texts)
    max_tokens = check_optional_int("max_tokens", max_tokens)
    vectorizer = layers.TextVectorization(max_tokens=None if max_tokens is None else max_tokens + 2)
    vectorizer.adapt(tf.constant(texts))
    return [str(w) for w in vectorizer.get_vocabulary()[2:]]  # drop "" (padding) and "[UNK]" (out of vocabulary)


def caption_tokenizer(vocabulary, sequence_length: int = 12, name: str = "text_vectorizer"):
    """The course's tokenizer: lowercase, strip punctuation, split on spaces, look words up in `vocabulary`.

    Returns a `keras.layers.TextVectorization` whose outputs are token ids `(batch, sequence_length)`: 0 for
    padding, 1 for a word outside the vocabulary, `i + 2` for `vocabulary[i]`.

    Example:
    >>> tokenizer = caption_tokenizer(["red", "toy"], sequence_length=4)
    >>> keras.ops.convert_to_numpy(tokenizer(["A red toy!"])).tolist()
    [[1, 2, 3, 0]]
    """
    return layers.TextVectorization(vocabulary=check_words("vocabulary", vocabulary),
                                    output_sequence_length=check_int("sequence_length", sequence_length), name=name)


def build_text_encoder(
    kind: str = "rnn",
    vocabulary=None,
    sequence_length: int = 12,
    embedding_dim: int = 32,
    hidden_dim: int = 32,
    num_heads: int = 2,
    dropout: float = 0.1,
    sequence_output: bool = False,
    name: str = "text_encoder",
    input_name: str = "text",
    preprocessed: bool = False,
) -> keras.Model:
    """Builds a caption encoder: string -> token ids -> embeddings -> features.

    RNN (`kind="rnn"`): with embeddings `e_t = E[w_t]`, a bidirectional GRU reads the caption both ways,
    `h_t = [GRU_fwd(e_1..e_t); GRU_bwd(e_T..e_t)]`, and the features are the final states of both directions
    (dimension `2 * hidden_dim`).
    Transformer (`kind="transformer"`): `x_t = E[w_t] + P[t]`, one encoder block
    `x = LN(x + MHA(x, x)); x = LN(x + FFN(x))`, then the mean over the non-padding tokens.
    Bag of words (`kind="bag"`): `x_t = ReLU(W E[w_t] + b)` for each word alone, then the mean over the
    non-padding tokens. Its tokens are not contextual: token t depends on word t only (neither its
    neighbours nor its position), which is what to attend from when the question is "what does this word look at?".

    Args:
        kind: str. `"rnn"`, `"transformer"` or `"bag"`. Defaults to `"rnn"`.
        vocabulary: list of str. The fixed vocabulary of `TextVectorization` (required): the moving toys'
            `mmkeras.data.VOCABULARY`, or `learn_vocabulary(your_training_captions)`.
        sequence_length: int. Captions are padded/cut to this many tokens. Defaults to `12`.
        embedding_dim: int. Size of the token embeddings. Defaults to `32`.
        hidden_dim: int. GRU units per direction, the Transformer's feed-forward size, or the bag's per-word
            feature size. Defaults to `32`.
        num_heads: int. Attention heads of the Transformer variant. Defaults to `2`.
        dropout: float. Dropout rate in [0, 1). Defaults to `0.1`.
        sequence_output: bool. Return the per-token features and which tokens are real words,
            `{"sequence": (batch, sequence_length, dim), "padding_mask": (batch, sequence_length)}`, instead
            of one vector. Defaults to `False`.
        name: str. The model's name. Defaults to `"text_encoder"`.
        input_name: str. The name of the model's input. Defaults to `"text"`.
        preprocessed: bool. Take token ids `(batch, sequence_length)` (int32, 0 = padding, 1 = unknown word),
            what `mmkeras.preprocessing.build_preprocessor` makes from the captions in `tf.data`, instead of
            strings: the model is then numeric and runs on any Keras backend. Defaults to `False` (strings, the
            tokenizer inside the model).

    Returns:
        A functional `keras.Model` with input `input_name`: a batch of strings `(batch,)`, or of token ids.

    Example:
    >>> from mmkeras.data import VOCABULARY
    >>> encoder = build_text_encoder(vocabulary=VOCABULARY)
    >>> tuple(encoder(keras.ops.convert_to_tensor(["a red toy moves to the left"])).shape)
    (1, 64)
    """
    check_choice("kind", kind, ("rnn", "transformer", "bag"))
    if vocabulary is None:
        raise ValueError("Pass `vocabulary=`: mmkeras.data.VOCABULARY for the moving toys, or "
                         "mmkeras.encoders.learn_vocabulary(your_training_captions). Received: vocabulary=None")
    vocabulary = check_words("vocabulary", vocabulary)
    sequence_length = check_int("sequence_length", sequence_length)
    embedding_dim = check_int("embedding_dim", embedding_dim)
    hidden_dim, num_heads = check_int("hidden_dim", hidden_dim), check_int("num_heads", num_heads)
    check_fraction("dropout", dropout)
    check_bool("sequence_output", sequence_output)
    check_bool("preprocessed", preprocessed)

    vectorizer = caption_tokenizer(vocabulary, sequence_length, name="text_vectorizer")
    vocab_size = vectorizer.vocabulary_size()  # the words + padding (0) + out of vocabulary (1)
    if preprocessed:
        text = token_ids = keras.Input(shape=(sequence_length,), dtype="int32", name=input_name)  # (batch, L)
    else:
        text = keras.Input(shape=(), dtype="string", name=input_name)  # (batch,)
        token_ids = vectorizer(text)  # (batch, L); 0 = padding, 1 = out of vocabulary
    if kind == "rnn":
        x = layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="token_embedding")(token_ids)
        x = layers.Dropout(dropout, name="embedding_dropout")(x)  # (batch, L, embedding_dim)
        gru = layers.GRU(hidden_dim, return_sequences=sequence_output, name="gru")
        features = layers.Bidirectional(gru, name="bi_gru")(x)  # (batch, 2H) or (batch, L, 2H)
        if sequence_output:
            features = sequence_outputs(features, PaddingMask(0, name="padding_mask")(token_ids))
    elif kind == "bag":
        padding_mask = PaddingMask(0, name="padding_mask")(token_ids)  # (batch, L): True on real words
        x = layers.Embedding(vocab_size, embedding_dim, name="token_embedding")(token_ids)
        x = layers.Dropout(dropout, name="embedding_dropout")(x)
        x = layers.Dense(hidden_dim, activation="relu", name="word_features")(x)  # (batch, L, H), word by word
        if sequence_output:
            features = sequence_outputs(x, padding_mask)
        else:
            features = layers.GlobalAveragePooling1D(name="mean_pool")(x, mask=padding_mask)  # mean of real words
    else:
        # The padding mask is passed explicitly, as keras-hub's own models do, rather than attached to tensors.
        padding_mask = PaddingMask(0, name="padding_mask")(token_ids)  # (batch, L): True on real words
        x = keras_hub.layers.TokenAndPositionEmbedding(
            vocabulary_size=vocab_size, sequence_length=sequence_length, embedding_dim=embedding_dim,
            name="token_and_position_embedding",
        )(token_ids)  # (batch, L, embedding_dim)
        x = keras_hub.layers.TransformerEncoder(
            intermediate_dim=hidden_dim, num_heads=num_heads, dropout=dropout, name="transformer_encoder"
        )(x, padding_mask=padding_mask)  # (batch, L, embedding_dim); no token attends to padding
        if sequence_output:
            features = sequence_outputs(x, padding_mask)
        else:
            features = layers.GlobalAveragePooling1D(name="mean_pool")(x, mask=padding_mask)  # mean of real words
    return keras.Model(text, features, name=name)


def bert_vocabulary(words) -> list[str]:
    """A word list with BERT's special tokens first, for a tiny offline BERT.

    Example:
    >>> bert_vocabulary(["red", "toy"])
    ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'red', 'toy']
    """
    words = check_words("words", words)
    return list(BERT_SPECIAL_TOKENS) + [w for w in words if w not in BERT_SPECIAL_TOKENS]


@keras.saving.register_keras_serializable(package="mmkeras")
class BertTextEncoder(keras.Model):
    """A keras-hub BERT preprocessor + backbone as one model: caption strings in, [CLS] features out.

    BERT reads `[CLS] w_1 ... w_n [SEP]` through Transformer encoder blocks; the features are the pooled
    [CLS] vector `h = tanh(W h_[CLS] + b)` (`pooled_output` of `keras_hub.models.BertBackbone`), or with
    `sequence_output=True` every token's vector and the padding mask,
    `{"sequence": (batch, length, hidden_dim), "padding_mask": (batch, length)}`.

    Why a subclass and not a functional graph: a keras-hub tokenizer keeps its vocabulary in the saved
    model's assets, which are restored only after the graph is rebuilt; this model declares its output
    shape (`compute_output_spec`) so that rebuilding never runs the tokenizer, and `.keras` files load.

    Args:
        backbone: keras_hub.models.Backbone. A BERT-like backbone whose outputs include `"pooled_output"` and
            `"sequence_output"`.
        preprocessor: keras_hub.models.Preprocessor. Maps strings to `token_ids`, `segment_ids`,
            `padding_mask`.
        sequence_output: bool. Return the token sequence and its mask instead of the pooled vector.
            Defaults to `False`.
        **kwargs: passed on to `keras.Model` (e.g. `name`).

    Example:
    >>> from mmkeras.data import VOCABULARY
    >>> encoder = build_bert_text_encoder(vocabulary=VOCABULARY)  # a BertTextEncoder around a tiny random BERT
    >>> tuple(encoder(tf.constant(["a red toy moves to the left"])).shape)
    (1, 32)
    """

    input_signature = ((), "string")
    """Per-sample shape and dtype of the input: one string (a subclassed model has no `inputs` to read)."""

    def __init__(self, backbone, preprocessor, sequence_output=False, **kwargs):
        super().__init__(**kwargs)
        outputs = getattr(backbone, "output", None)
        if not isinstance(outputs, dict) or not {"pooled_output", "sequence_output"} <= set(outputs):
            have = sorted(outputs) if isinstance(outputs, dict) else type(outputs).__name__
            raise ValueError(
                "BertTextEncoder needs a backbone with 'pooled_output' and 'sequence_output' outputs (a BERT-like "
                f"encoder). Received: {type(backbone).__name__} with outputs {have}"
            )
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.sequence_output = check_bool("sequence_output", sequence_output)

    def build(self, input_shape=None):
        # The backbone is built on construction; the preprocessor builds itself on its first call (after a
        # saved model's tokenizer vocabulary is restored). Nothing to trace here.
        self.built = True

    def call(self, text, training=None):
        tokens = self.preprocessor(text)  # {"token_ids", "segment_ids", "padding_mask"}: (batch, length)
        outputs = self.backbone(tokens, training=training)
        if self.sequence_output:  # (batch, length, hidden_dim) and (batch, length)
            return sequence_outputs(outputs["sequence_output"], keras.ops.cast(tokens["padding_mask"], "bool"))
        return outputs["pooled_output"]  # (batch, hidden_dim)

    def compute_output_spec(self, text, training=None):
        batch, dim = text.shape[0], self.backbone.hidden_dim
        if self.sequence_output:
            length = self.preprocessor.sequence_length
            return sequence_outputs(keras.KerasTensor((batch, length, dim), dtype=self.compute_dtype),
                                    keras.KerasTensor((batch, length), dtype="bool"))
        return keras.KerasTensor((batch, dim), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        preprocessor = keras.saving.serialize_keras_object(self.preprocessor)
        # Loading must not build the preprocessor before its tokenizer's vocabulary (an asset) is back:
        # without a build config it builds itself on the first call, with the vocabulary in place.
        preprocessor.pop("build_config", None)
        config.update({"backbone": keras.saving.serialize_keras_object(self.backbone), "preprocessor": preprocessor,
                       "sequence_output": self.sequence_output})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        config["preprocessor"] = keras.saving.deserialize_keras_object(config["preprocessor"])
        return cls(**config)


def build_bert_text_encoder(
    preset: str | None = None,
    vocabulary=None,
    sequence_length: int = 16,
    trainable: bool = True,
    tiny_config: dict | None = None,
    sequence_output: bool = False,
    name: str = "bert_text_encoder",
) -> BertTextEncoder:
    """Builds a BERT caption encoder from keras-hub (features: the pooled [CLS] vector).

    Args:
        preset: str or None. A keras-hub preset name (e.g. `"bert_tiny_en_uncased"`, downloaded once and
            cached), or the path of a local preset folder (made by `save_to_preset`). `None` builds a tiny,
            randomly initialised BERT on `vocabulary`: no download, for learning the plumbing.
            Defaults to `None`.
        vocabulary: list of str or None. The words of the tiny BERT (`preset=None`, required there), e.g.
            `mmkeras.data.VOCABULARY` or `learn_vocabulary(your_captions)`; BERT's special tokens are added.
            A preset brings its own vocabulary, so this must be `None` with a preset.
        sequence_length: int. Token ids per caption, `[CLS]` and `[SEP]` included. Defaults to `16`.
        trainable: bool. `False` freezes the backbone (feature extraction). Defaults to `True`.
        tiny_config: dict or None. Overrides of the tiny BERT's sizes (`num_layers`, `num_heads`, `hidden_dim`,
            `intermediate_dim`) when `preset=None`.
        sequence_output: bool. Return every token's vector and the padding mask. Defaults to `False`.
        name: str. The model's name. Defaults to `"bert_text_encoder"`.

    Returns:
        A `BertTextEncoder`: input a batch of strings `(batch,)`, output `(batch, hidden_dim)`.

    Example:
    >>> from mmkeras.data import VOCABULARY
    >>> encoder = build_bert_text_encoder(vocabulary=VOCABULARY)  # tiny, random, offline
    >>> tuple(encoder(tf.constant(["a red toy moves to the left"])).shape)
    (1, 32)
    """
    sequence_length = check_int("sequence_length", sequence_length)
    check_bool("trainable", trainable)
    if preset is None:
        if vocabulary is None:
            raise ValueError("A tiny BERT (preset=None) needs `vocabulary=`: mmkeras.data.VOCABULARY for the moving "
                             "toys, or learn_vocabulary(your_training_captions). Received: vocabulary=None")
        sizes = {"num_layers": 1, "num_heads": 2, "hidden_dim": 32, "intermediate_dim": 64}
        unknown = set(tiny_config or {}) - set(sizes)
        if unknown:
            raise ValueError(f"`tiny_config` accepts the keys {sorted(sizes)}. Received: tiny_config={tiny_config!r}")
        sizes.update({k: check_int(f"tiny_config[{k!r}]", v) for k, v in (tiny_config or {}).items()})
        words = bert_vocabulary(vocabulary)
        tokenizer = keras_hub.tokenizers.BertTokenizer(vocabulary=words, lowercase=True)
        preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
        backbone = keras_hub.models.BertBackbone(
            vocabulary_size=len(words), max_sequence_length=sequence_length, **sizes
        )
    else:
        if not isinstance(preset, str) or not preset:
            raise ValueError(f"`preset` must be a preset name, a preset folder or None. Received: preset={preset!r}")
        if vocabulary is not None:
            raise ValueError(f"A preset brings its own vocabulary: pass vocabulary=None with preset={preset!r}. "
                             f"Received: a vocabulary of {len(list(vocabulary))} words")
        backbone = keras_hub.models.Backbone.from_preset(preset)
        preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(preset, sequence_length=sequence_length)
    backbone.trainable = trainable
    return BertTextEncoder(backbone, preprocessor, sequence_output=sequence_output, name=name)
