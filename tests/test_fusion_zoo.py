"""Every registered fusion strategy: the layer contract, the math on small hand-computed examples, bad arguments.

Backend-neutral on purpose (no TensorFlow here): `tests/test_backends.py` runs this file again under
`KERAS_BACKEND=jax`.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mmkeras import testing
from mmkeras.fusion import (
    FUSIONS,
    BilinearFusion,
    CrossModalAttention,
    GatedFusion,
    LowRankTensorFusion,
    MultimodalTransformerFusion,
    ProductFusion,
    SumFusion,
    TensorFusion,
    get_fusion,
)

RNG = np.random.default_rng(0)
SEQUENCE = RNG.normal(size=(4, 5, 3)).astype("float32")  # (batch, steps, features)
VECTOR = RNG.normal(size=(4, 6)).astype("float32")  # (batch, features)
CONTEXT = RNG.normal(size=(4, 4, 6)).astype("float32")  # a second sequence: attention needs several keys
SMALL = {"output_dim": 8, "width": 8, "rank": 8, "intermediate_dim": 16}


def _small(name):
    entry = FUSIONS[name]
    return entry.make(**{k: v for k, v in SMALL.items() if k in entry.defaults})


def _model(layer, shapes):
    inputs = [keras.Input(shape=s) for s in shapes]
    return keras.Model(inputs, layer(inputs))


def test_the_zoo_has_at_least_eight_strategies_that_say_what_they_read():
    assert len(FUSIONS) >= 8
    assert {entry.reads for entry in FUSIONS.values()} == {"vectors", "sequences"}


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_layer_contract(name, tmp_path):
    layer = _small(name)
    testing.check_config_round_trip(layer)
    model = _model(layer, [(5, 3), (4, 6)])
    width = model.output.shape[-1]
    inputs = [SEQUENCE, CONTEXT]
    testing.check_shapes(model, inputs, (4, width))
    testing.check_save_load(model, inputs, tmp_path)
    testing.check_gradients(model, inputs)
    testing.check_mixed_precision(lambda dtype: FUSIONS[name].make(dtype=dtype, **{
        k: v for k, v in SMALL.items() if k in FUSIONS[name].defaults}), [SEQUENCE, CONTEXT])


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_padding_is_ignored(name):
    """Changing what sits on padded steps changes nothing."""
    layer = _small(name)
    mask = np.array([[True, True, True, False, False]] * 4)
    other = SEQUENCE.copy()
    other[:, 3:] = 100.0
    first = keras.ops.convert_to_numpy(layer([SEQUENCE, VECTOR], padding_masks=[mask, None]))
    second = keras.ops.convert_to_numpy(layer([other, VECTOR], padding_masks=[mask, None]))
    np.testing.assert_allclose(first, second, atol=1e-5)


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_three_modalities_and_a_batch_of_one(name):
    layer = _small(name)
    out = layer([SEQUENCE[:1], VECTOR[:1], VECTOR[:1, :2]])
    assert out.shape[0] == 1 and len(out.shape) == 2


def test_sum_and_product_math():
    a, b = np.array([[1.0, 2.0]], "float32"), np.array([[3.0]], "float32")
    for layer, combine in ((SumFusion(2, activation="linear"), np.add), (ProductFusion(2, activation="linear"),
                                                                         np.multiply)):
        out = keras.ops.convert_to_numpy(layer([a, b]))
        (wa, ba), (wb, bb) = [[keras.ops.convert_to_numpy(w) for w in p.weights] for p in layer.projections]
        np.testing.assert_allclose(out, combine(a @ wa + ba, b @ wb + bb), rtol=1e-5)


def test_bilinear_is_a_projection_of_the_hadamard_product():
    layer = BilinearFusion(rank=3, output_dim=2)
    a, b = RNG.normal(size=(2, 4)).astype("float32"), RNG.normal(size=(2, 5)).astype("float32")
    out = keras.ops.convert_to_numpy(layer([a, b]))
    (ua, ca), (ub, cb) = [[keras.ops.convert_to_numpy(w) for w in p.weights] for p in layer.projections]
    p, c = (keras.ops.convert_to_numpy(w) for w in layer.output_projection.weights)
    np.testing.assert_allclose(out, (np.tanh(a @ ua + ca) * np.tanh(b @ ub + cb)) @ p + c, rtol=1e-4, atol=1e-6)


def test_tensor_fusion_is_the_outer_product_of_z_and_one():
    layer = TensorFusion(output_dim=1, projection_dim=None)
    a, b = np.array([[2.0, 3.0]], "float32"), np.array([[5.0]], "float32")
    tensor = keras.ops.convert_to_numpy(layer.outer_product([a, b]))
    # [2, 3, 1] ⊗ [5, 1] = [[10, 2], [15, 3], [5, 1]], flattened row by row
    np.testing.assert_allclose(tensor, [[10.0, 2.0, 15.0, 3.0, 5.0, 1.0]])


def test_tensor_fusion_refuses_a_product_too_large():
    layer = TensorFusion(projection_dim=None, max_size=1000)
    with pytest.raises(ValueError, match=r"prod\(d_m \+ 1\) = 4225 .*max_size=1000"):
        layer([np.ones((2, 64), "float32"), np.ones((2, 64), "float32")])


def test_low_rank_tensor_fusion_equals_a_full_tensor_fusion_with_a_factored_weight():
    layer = LowRankTensorFusion(output_dim=2, rank=3, activation="linear")
    a, b = RNG.normal(size=(2, 2)).astype("float32"), RNG.normal(size=(2, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(layer([a, b]))
    fa, fb = (keras.ops.convert_to_numpy(f) for f in layer.factors)  # (rank, d+1, out)
    lam, bias = keras.ops.convert_to_numpy(layer.rank_weights), keras.ops.convert_to_numpy(layer.bias)
    full = np.einsum("r,rio,rjo->ijo", lam, fa, fb)  # W = sum_r lam_r w_r^a ⊗ w_r^b: (3, 4, out)
    za, zb = np.hstack([a, np.ones((2, 1))]), np.hstack([b, np.ones((2, 1))])
    expected = np.einsum("bi,bj,ijo->bo", za, zb, full) + bias
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    assert {w.path.split("/")[-1] for w in layer.trainable_weights} >= {"factor_0", "factor_1", "rank_weights"}


def test_gates_sum_to_one_over_the_modalities():
    layer = GatedFusion(4)
    gates = keras.ops.convert_to_numpy(layer.gates([VECTOR, VECTOR[:, :2]]))
    assert gates.shape == (4, 2, 4)
    np.testing.assert_allclose(gates.sum(axis=1), 1.0, rtol=1e-5)


def test_cross_modal_attention_weights_are_a_softmax_over_valid_context():
    layer = CrossModalAttention(width=4, num_heads=1)
    context = RNG.normal(size=(4, 6, 2)).astype("float32")
    context_mask = np.array([[True] * 4 + [False] * 2] * 4)
    scores = keras.ops.convert_to_numpy(layer.attention_scores([SEQUENCE, context], [None, context_mask]))
    assert scores.shape == (4, 1, 5, 6)
    np.testing.assert_allclose(scores.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(scores[..., 4:], 0.0)
    # One query token, one head, identity-free check: A = softmax(q k^T / sqrt(d)) computed by hand.
    q = keras.ops.convert_to_numpy(layer.projections[0](SEQUENCE[:1, :1]))
    k = keras.ops.convert_to_numpy(layer.projections[1](context[:1]))
    wq, bq, wk, bk = (keras.ops.convert_to_numpy(w) for w in (layer.attention.query_dense.kernel,
                                                               layer.attention.query_dense.bias,
                                                               layer.attention.key_dense.kernel,
                                                               layer.attention.key_dense.bias))
    query = np.einsum("btd,dhk->bthk", q, wq) + bq  # (1, 1, 1, key_dim)
    key = np.einsum("bsd,dhk->bshk", k, wk) + bk  # (1, 6, 1, key_dim)
    logits = np.einsum("bthk,bshk->bhts", query, key)[0, 0, 0] / np.sqrt(wq.shape[-1])
    logits[4:] = -np.inf
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(scores[0, 0, 0], expected, rtol=1e-4, atol=1e-6)


def test_transformer_sees_which_modality_a_token_came_from():
    layer = MultimodalTransformerFusion(width=8, intermediate_dim=16)
    layer([VECTOR, VECTOR])
    swapped = keras.ops.convert_to_numpy(layer([VECTOR[::-1], VECTOR]))
    plain = keras.ops.convert_to_numpy(layer([VECTOR, VECTOR[::-1]]))
    assert not np.allclose(swapped, plain), "modality embeddings make the order of modalities matter"


@pytest.mark.parametrize(
    "make,call,match",
    [
        (lambda: SumFusion(0), None, r"width=0"),
        (lambda: BilinearFusion(output_dim=-1), None, r"output_dim=-1"),
        (lambda: TensorFusion(dropout=1.0), None, r"dropout=1.0"),
        (lambda: LowRankTensorFusion(rank=0), None, r"rank=0"),
        (lambda: CrossModalAttention(num_heads=0), None, r"num_heads=0"),
        (lambda: MultimodalTransformerFusion(pooling="max"), None, r"pooling='max'"),
        (lambda: CrossModalAttention(query_index=2, width=4), lambda f: f([VECTOR, VECTOR]), r"query_index=2"),
        (lambda: SumFusion(4), lambda f: f(VECTOR), r"non-empty list"),
        (lambda: SumFusion(4), lambda f: f([np.ones((2, 3, 4, 5), "float32")]), r"Received: input_shape"),
        (lambda: SumFusion(4), lambda f: (f([VECTOR, VECTOR]), f([VECTOR])), r"built for 2 modalities"),
        (lambda: GatedFusion(4), lambda f: f([VECTOR], padding_masks=[None, None]), r"one entry per modality"),
    ],
)
def test_bad_arguments_raise(make, call, match):
    with pytest.raises(ValueError, match=match):
        layer = make()
        if call is not None:
            call(layer)


def test_get_fusion_builds_with_defaults_and_overrides():
    assert get_fusion("gated", width=16).width == 16
    assert get_fusion("tensor").projection_dim == FUSIONS["tensor"].defaults["projection_dim"]


def test_modality_dropout_drops_whole_modalities_only_in_training():
    from mmkeras.missing import ModalityDropout

    layer = ModalityDropout(0.5, seed=3)
    z = [np.ones((200, 3), "float32"), np.ones((200, 2), "float32")]
    kept = [keras.ops.convert_to_numpy(x) for x in layer(z, training=True)]
    for x in kept:
        assert set(np.unique(x)) <= {0.0, 1.0} and (x.min(1) == x.max(1)).all()  # a row is all kept or all dropped
    dropped = np.stack([x[:, 0] == 0 for x in kept], 1)
    assert not dropped.all(1).any(), "a sample never loses every modality"
    assert 0.18 < dropped.mean() < 0.32  # 0.5 minus the draws that would drop both, which keep both
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(z)[0]), z[0])
    testing.check_config_round_trip(layer)


@pytest.mark.parametrize("cls", [SumFusion, ProductFusion, BilinearFusion, GatedFusion])
def test_normalized_projections_keep_the_layer_contract(cls, tmp_path):
    layer = cls(normalize=True, **({"rank": 8, "output_dim": 8} if cls is BilinearFusion else {"width": 8}))
    testing.check_config_round_trip(layer)
    assert layer.get_config()["normalize"] is True
    model = _model(layer, [(5, 3), (4, 6)])
    testing.check_shapes(model, [SEQUENCE, CONTEXT], (4, 8))
    testing.check_save_load(model, [SEQUENCE, CONTEXT], tmp_path)
    testing.check_gradients(model, [SEQUENCE, CONTEXT])


def test_normalized_product_factors_do_not_saturate_on_large_features():
    """Features 100 times too large saturate every tanh factor (a constant, no gradient); LN(W z + b) does not."""
    big = [100 * VECTOR, RNG.normal(size=(4, 5)).astype("float32")]
    factor = {}
    for normalize in (False, True):
        layer = ProductFusion(width=16, normalize=normalize)
        layer(big)
        factor[normalize] = keras.ops.convert_to_numpy(layer.project(big)[0])  # the first modality's tanh factor
    assert np.mean(np.abs(factor[False]) > 0.99) > 0.8, np.abs(factor[False]).mean()
    assert np.mean(np.abs(factor[True]) > 0.99) < 0.2, np.abs(factor[True]).mean()
    np.testing.assert_allclose(factor[True].mean(axis=-1), 0.0, atol=0.2)  # LN centres every sample's units


def test_normalize_must_be_a_bool():
    with pytest.raises(ValueError, match="normalize"):
        ProductFusion(normalize="yes")
