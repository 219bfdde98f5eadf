"""A multimodal Transformer (多模态Transformer): all modalities' tokens in one self-attention stack."""

from __future__ import annotations

import keras
import keras_hub
from keras import layers, ops

from mmkeras._validation import check_choice, check_fraction, check_int
from mmkeras.fusion.attention import as_sequence, valid_steps
from mmkeras.fusion.base import FusionLayer, masked_mean


@keras.saving.register_keras_serializable(package="mmkeras")
class MultimodalTransformerFusion(FusionLayer):
    """Self-attention over the tokens of every modality at once, each tagged with a learned modality embedding.

    Every modality's tokens are projected to `width` and get the embedding of their modality type `t_m`, so the
    stack knows where each token came from; a learned `[CLS]` token goes first:

        X = [cls; X_1 W_1 + t_1; ...; X_M W_M + t_M]       (batch, 1 + sum_m steps_m, width)
        X = TransformerEncoder_L(...TransformerEncoder_1(X))   self-attention, padding masked out
        H = X[:, 0]  (pooling="cls")   or   the mean of the valid tokens (pooling="mean")

    A token of one modality can attend to any token of any other, and to its own: fusion and context in one
    mechanism, the design of VisualBERT-like single-stream models. The encoder blocks are keras-hub's
    `TransformerEncoder`. Vectors count as one-token sequences.

    Args:
        width: int. Token width. Defaults to `64`.
        num_layers: int. Encoder blocks. Defaults to `1`.
        num_heads: int. Attention heads. Defaults to `2`.
        intermediate_dim: int. Feed-forward width of each block. Defaults to `128`.
        dropout: float. Dropout inside the blocks, in [0, 1). Defaults to `0.0`.
        pooling: str. `"cls"` or `"mean"`. Defaults to `"cls"`.
        **kwargs: passed on to `keras.layers.Layer`.

    Example:
    >>> fusion = MultimodalTransformerFusion(width=8, intermediate_dim=16)
    >>> tuple(fusion([keras.ops.ones((2, 5, 3)), keras.ops.ones((2, 4))]).shape)
    (2, 8)

    References:
        Li, Yatskar, Yin, Hsieh, Chang. VisualBERT: A Simple and Performant Baseline for Vision and Language. 2019.
    """

    def __init__(self, width=64, num_layers=1, num_heads=2, intermediate_dim=128, dropout=0.0, pooling="cls",
                 **kwargs):
        super().__init__(**kwargs)
        self.width = check_int("width", width)
        self.num_layers = check_int("num_layers", num_layers)
        self.num_heads = check_int("num_heads", num_heads)
        self.intermediate_dim = check_int("intermediate_dim", intermediate_dim)
        self.dropout = check_fraction("dropout", dropout)
        self.pooling = check_choice("pooling", pooling, ("cls", "mean"))

    def build(self, input_shape):
        shapes = self.check_input_shape(input_shape)
        self.projections = []
        for index, shape in enumerate(shapes):
            projection = layers.Dense(self.width, dtype=self.dtype_policy, name=f"projection_{index}")
            projection.build((shape[0], None, shape[-1]))
            self.projections.append(projection)
        self.modality_embedding = self.add_weight(shape=(len(shapes), self.width), initializer="glorot_uniform",
                                                  name="modality_embedding")
        self.cls_token = self.add_weight(shape=(self.width,), initializer="glorot_uniform", name="cls_token")
        self.blocks = []
        for index in range(self.num_layers):
            block = keras_hub.layers.TransformerEncoder(self.intermediate_dim, self.num_heads, dropout=self.dropout,
                                                        dtype=self.dtype_policy, name=f"block_{index}")
            block.build((shapes[0][0], None, self.width))
            self.blocks.append(block)

    def call(self, features, padding_masks=None, training=None):
        features = list(features)
        masks = self.check_padding_masks(features, padding_masks)
        if len(features) != len(self.projections):
            raise ValueError(f"MultimodalTransformerFusion was built for {len(self.projections)} modalities. "
                             f"Received: {len(features)} inputs")
        tokens, valid = [], []
        for index, (projection, x, mask) in enumerate(zip(self.projections, features, masks)):
            x = as_sequence(x)  # (batch, steps_m, d_m)
            tokens.append(projection(x) + ops.cast(self.modality_embedding[index], self.compute_dtype))
            valid.append(valid_steps(x, mask))
        first = tokens[0]
        cls = ops.zeros_like(first[:, :1, :]) + ops.cast(self.cls_token, self.compute_dtype)  # (batch, 1, width)
        x = ops.concatenate([cls, *tokens], axis=1)  # (batch, 1 + sum_m steps_m, width)
        padding_mask = ops.concatenate([ops.ones_like(valid[0][:, :1]), *valid], axis=1)  # cls is always valid
        for block in self.blocks:
            x = block(x, padding_mask=padding_mask, training=training)
        if self.pooling == "cls":
            return x[:, 0, :]  # (batch, width)
        return masked_mean(x[:, 1:, :], padding_mask[:, 1:])

    def compute_output_shape(self, input_shape):
        shapes = self.check_input_shape(input_shape)
        return (shapes[0][0], self.width)

    def get_config(self):
        config = super().get_config()
        config.update({"width": self.width, "num_layers": self.num_layers, "num_heads": self.num_heads,
                       "intermediate_dim": self.intermediate_dim, "dropout": self.dropout, "pooling": self.pooling})
        return config
