"""Per-modality projections to a common width, shared by the fusions that need every modality the same size."""

from __future__ import annotations

import keras
from keras import layers

from mmkeras._validation import check_bool, check_fraction, check_int
from mmkeras.fusion.base import FusionLayer


class ProjectedFusion(FusionLayer):
    """A fusion that first maps every modality to `width` units: `h_m = act(W_m z_m + b_m)`.

    With `normalize=True`, `h_m = act(LN_m(W_m z_m + b_m))`: a layer normalization per modality (its own scale and
    shift) keeps every pre-activation near unit scale whatever the size of the encoder's features, so a `tanh`
    cannot saturate for every sample at once (notebook 06, section 4, shows a product fusion whose image factor
    did: a constant, with no gradient left to change it).

    Subclasses implement `combine(projected, training)` on the list of `(batch, width)` tensors.
    """

    default_activation = "relu"

    def __init__(self, width=64, activation=None, dropout=0.0, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.width = check_int("width", width)
        self.normalize = check_bool("normalize", normalize)
        self.activation = keras.activations.get(activation or self.default_activation)
        self.dropout = check_fraction("dropout", dropout)
        self.dropout_layer = layers.Dropout(self.dropout, dtype=self.dtype_policy, name="dropout")

    def build(self, input_shape):
        shapes = self.pooled_shapes(self.check_input_shape(input_shape))
        self.projections, self.norms = [], []
        for index, shape in enumerate(shapes):
            projection = layers.Dense(self.width, activation=None if self.normalize else self.activation,
                                      dtype=self.dtype_policy, name=f"projection_{index}")
            projection.build(shape)
            self.projections.append(projection)
            if self.normalize:
                norm = layers.LayerNormalization(dtype=self.dtype_policy, name=f"projection_norm_{index}")
                norm.build(shape[:-1] + (self.width,))
                self.norms.append(norm)
        self.build_combination(shapes)

    def _project_one(self, index, vector):
        if not self.normalize:
            return self.projections[index](vector)  # act(W z + b)
        return self.activation(self.norms[index](self.projections[index](vector)))  # act(LN(W z + b))

    def build_combination(self, shapes):
        """Creates what `combine` needs beyond the projections (nothing by default)."""

    def project(self, features, padding_masks=None, training=None) -> list:
        vectors = self.pool(list(features), padding_masks)  # each (batch, d_m)
        if len(vectors) != len(self.projections):
            raise ValueError(f"{type(self).__name__} was built for {len(self.projections)} modalities. "
                             f"Received: {len(vectors)} inputs")
        return [self.dropout_layer(self._project_one(i, v), training=training) for i, v in enumerate(vectors)]

    def call(self, features, padding_masks=None, training=None):
        return self.combine(self.project(features, padding_masks, training), training)

    def compute_output_shape(self, input_shape):
        shapes = self.pooled_shapes(self.check_input_shape(input_shape))
        return (shapes[0][0], self.output_size())

    def output_size(self) -> int:
        return self.width

    def get_config(self):
        config = super().get_config()
        config.update({"width": self.width, "activation": keras.activations.serialize(self.activation),
                       "dropout": self.dropout, "normalize": self.normalize})
        return config
