"""Cross-modal attention (跨模态注意力): the tokens of one modality look up the tokens of the others."""

from __future__ import annotations

import keras
from keras import layers, ops

from mmkeras._validation import check_fraction, check_int
from mmkeras.fusion.base import FusionLayer, masked_mean


def as_sequence(x):
    """A vector `(batch, d)` as a one-token sequence `(batch, 1, d)`; a sequence passes unchanged."""
    return x[:, None, :] if len(x.shape) == 2 else x


def valid_steps(x, padding_mask):
    """The padding mask of `x` as a bool tensor `(batch, steps)`; all True when there is none."""
    if padding_mask is None:
        return ops.ones_like(x[:, :, 0], dtype="bool")
    return ops.cast(padding_mask, "bool")


@keras.saving.register_keras_serializable(package="mmkeras")
class CrossModalAttention(FusionLayer):
    """Cross-modal attention: queries from one modality, keys and values from all the others.

    With the query modality's tokens projected to `Q = X_q W_Q` and the other modalities' tokens (projected to a
    common width and put side by side) to `K = X_c W_K`, `V = X_c W_V`,

        A = softmax(Q K^T / sqrt(d_k))          (batch, heads, query tokens, context tokens); padding gets 0
        H~ = A V                                 every query token becomes a mix of the context it matches
        H = masked_mean(LayerNorm(X_q + H~))     (batch, width)

    Unlike the seed's `H~(2) = A^T H(1)` (article 003; docs/errata.md #25), whose weights are not normalised over
    what is mixed, each row of `A` is a softmax: the weights of one query token sum to 1, so `H~` is a true
    weighted average of the values.
    Vectors count as one-token sequences.

    Args:
        query_index: int. Which input (in the model's modality order) supplies the queries. Defaults to `0`.
        width: int. The common width of all tokens and of `H`. Defaults to `64`.
        num_heads: int. Attention heads. Defaults to `2`.
        dropout: float. Dropout on the attention weights, in [0, 1). Defaults to `0.0`.
        **kwargs: passed on to `keras.layers.Layer`.

    Example:
    >>> attention = CrossModalAttention(width=8)
    >>> tuple(attention([keras.ops.ones((2, 5, 3)), keras.ops.ones((2, 7, 4))]).shape)
    (2, 8)

    References:
        Tsai, Bai, Liang, Kolter, Morency, Salakhutdinov. Multimodal Transformer for Unaligned Multimodal
        Language Sequences. ACL 2019.
    """

    def __init__(self, query_index=0, width=64, num_heads=2, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.query_index = check_int("query_index", query_index, minimum=0)
        self.width = check_int("width", width)
        self.num_heads = check_int("num_heads", num_heads)
        self.dropout = check_fraction("dropout", dropout)

    def build(self, input_shape):
        shapes = self.check_input_shape(input_shape)
        if len(shapes) < 2 or self.query_index >= len(shapes):
            raise ValueError(f"CrossModalAttention needs at least 2 modalities and query_index < their number. "
                             f"Received: {len(shapes)} inputs, query_index={self.query_index}")
        self.projections = []
        for index, shape in enumerate(shapes):
            projection = layers.Dense(self.width, dtype=self.dtype_policy, name=f"projection_{index}")
            projection.build((shape[0], None, shape[-1]))
            self.projections.append(projection)
        self.attention = layers.MultiHeadAttention(self.num_heads, max(1, self.width // self.num_heads),
                                                   dropout=self.dropout, dtype=self.dtype_policy, name="attention")
        sequence = (shapes[0][0], None, self.width)
        self.attention.build(sequence, sequence)
        self.norm = layers.LayerNormalization(dtype=self.dtype_policy, name="norm")
        self.norm.build(sequence)

    def _attend(self, features, padding_masks, training, return_scores):
        masks = self.check_padding_masks(features, padding_masks)
        if len(features) != len(self.projections):
            raise ValueError(f"CrossModalAttention was built for {len(self.projections)} modalities. "
                             f"Received: {len(features)} inputs")
        tokens = [p(as_sequence(x)) for p, x in zip(self.projections, features)]  # each (batch, steps_m, width)
        valid = [valid_steps(as_sequence(x), m) for x, m in zip(features, masks)]
        query, query_valid = tokens[self.query_index], valid[self.query_index]
        others = [i for i in range(len(tokens)) if i != self.query_index]
        context = ops.concatenate([tokens[i] for i in others], axis=1)  # (batch, context steps, width)
        context_valid = ops.concatenate([valid[i] for i in others], axis=1)  # (batch, context steps)
        mask = query_valid[:, :, None] & context_valid[:, None, :]  # (batch, query steps, context steps)
        attended, scores = self.attention(query, context, attention_mask=mask, return_attention_scores=True,
                                          training=training)
        fused = masked_mean(self.norm(query + attended), query_valid)  # (batch, width)
        return (fused, scores) if return_scores else fused

    def call(self, features, padding_masks=None, training=None):
        return self._attend(list(features), padding_masks, training, return_scores=False)

    def attention_scores(self, features, padding_masks=None):
        """The attention weights `A`, `(batch, heads, query steps, context steps)`, for plotting."""
        self.ensure_built(features, padding_masks)
        return self._attend(list(features), padding_masks, False, return_scores=True)[1]

    def compute_output_shape(self, input_shape):
        shapes = self.check_input_shape(input_shape)
        return (shapes[0][0], self.width)

    def get_config(self):
        config = super().get_config()
        config.update({"query_index": self.query_index, "width": self.width, "num_heads": self.num_heads,
                       "dropout": self.dropout})
        return config
