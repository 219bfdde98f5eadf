"""mmkeras.contrastive: CLIP's loss against NumPy, recall@k by hand, and the dual encoder's contract."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmkeras.contrastive import (
    CLIPModel,
    bidirectional_recall,
    build_clip_model,
    clip_dataset,
    clip_loss,
    retrieval_recall,
    scene_prompts,
    zero_shot_attributes,
)
from mmkeras.data.scenes import make_scenes
from mmkeras.testing import check_config_round_trip, check_save_load, check_shapes, model_inputs


def numpy_clip_loss(image, text, t, max_scale=100.0):
    """The formula written out: (CE(logits, arange N) + CE(logits^T, arange N)) / 2, logits = exp(t) I T^T."""
    logits = min(math.exp(t), max_scale) * np.asarray(image, "float64") @ np.asarray(text, "float64").T

    def cross_entropy(z):  # mean over rows of -log softmax(z)_ii
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(-(np.diag(z) - np.log(np.exp(z).sum(axis=1)))))

    return (cross_entropy(logits) + cross_entropy(logits.T)) / 2


def unit(x):
    x = np.asarray(x, "float32")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def tiny_model(**kwargs):
    return build_clip_model(embedding_dim=8, filters=(4,), image_features=8, **kwargs)


def batch(n=4, seed=0):
    scenes = make_scenes(n, seed=seed)
    return {"image": scenes.features["image"], "text": np.array([str(t) for t in scenes.features["text"]])}


# === clip_loss: the math ===

def test_clip_loss_2x2_by_hand():
    # logits = [[1, 0], [0, 1]] (t = 0): each row's CE is log(1 + e^-1); both directions agree.
    by_hand = math.log(1 + math.exp(-1))
    assert float(clip_loss(np.eye(2), np.eye(2), 0.0)) == pytest.approx(by_hand, abs=1e-6)
    assert numpy_clip_loss(np.eye(2), np.eye(2), 0.0) == pytest.approx(by_hand, abs=1e-12)


def test_clip_loss_3x3_matches_numpy_and_is_asymmetric_per_direction():
    rng = np.random.default_rng(0)
    image, text = unit(rng.normal(size=(3, 4))), unit(rng.normal(size=(3, 4)))
    t = math.log(1 / 0.07)
    assert float(clip_loss(image, text, t)) == pytest.approx(numpy_clip_loss(image, text, t), rel=1e-5)
    # Swapping the modalities transposes the logits: the symmetric loss does not change.
    assert float(clip_loss(text, image, t)) == pytest.approx(float(clip_loss(image, text, t)), rel=1e-6)


def test_aligned_embeddings_give_a_low_loss_and_shuffled_a_high_one():
    e = unit(np.eye(6)[:, :6])
    t = math.log(100.0)
    aligned = float(clip_loss(e, e, t))
    shuffled = float(clip_loss(e, e[::-1], t))
    assert aligned < 1e-6 and shuffled > 10


def test_the_logit_scale_is_clipped_at_100():
    rng = np.random.default_rng(1)
    image, text = unit(rng.normal(size=(3, 4))), unit(rng.normal(size=(3, 4)))
    at_limit = float(clip_loss(image, text, math.log(100.0)))
    assert float(clip_loss(image, text, 10.0)) == pytest.approx(at_limit, rel=1e-6)  # exp(10) > 100: clipped
    assert float(clip_loss(image, text, math.log(50.0))) != pytest.approx(at_limit, rel=1e-3)
    model = tiny_model()
    model.log_temperature.assign(10.0)
    assert model.logit_scale == pytest.approx(100.0) and model.temperature == pytest.approx(0.01)


def test_one_pair_has_zero_loss():
    # N = 1: the only caption is the right one, softmax over one logit is 1, nothing to contrast.
    assert float(clip_loss(unit([[1.0, 2.0]]), unit([[3.0, -1.0]]), 2.0)) == pytest.approx(0.0, abs=1e-7)


def test_clip_loss_rejects_mismatched_counts_and_ranks():
    with pytest.raises(ValueError, match="as many captions as images"):
        clip_loss(np.zeros((3, 4)), np.zeros((2, 4)), 0.0)
    with pytest.raises(ValueError, match=r"shape \(N, d\)"):
        clip_loss(np.zeros((3,)), np.zeros((3,)), 0.0)
    with pytest.raises(ValueError, match="max_scale"):
        clip_loss(np.eye(2), np.eye(2), 0.0, max_scale=0)


# === retrieval_recall ===

def test_recall_at_k_by_hand_with_the_tie_convention():
    s = np.array([[0.9, 0.1, 0.0, 0.3],    # right item first: hit at every k
                  [0.8, 0.5, 0.6, 0.1],    # two items above: rank 3
                  [0.2, 0.2, 0.2, 0.2],    # a four-way tie: expected recall k / 4
                  [0.0, 0.7, 0.1, 0.7]])   # one wrong item ties with it (and none above): 1/2 at k = 1
    recall = retrieval_recall(s, ks=(1, 2, 3))
    assert recall[1] == pytest.approx((1 + 0 + 1 / 4 + 1 / 2) / 4)
    assert recall[2] == pytest.approx((1 + 0 + 2 / 4 + 1) / 4)
    assert recall[3] == pytest.approx((1 + 1 + 3 / 4 + 1) / 4)


def test_constant_similarity_scores_chance_and_ids_count_duplicates():
    assert retrieval_recall(np.zeros((10, 10)), ks=(1, 5))[5] == pytest.approx(0.5)
    # items 0 and 1 share a description; query 0 scores item 1 highest: wrong by index, right by id.
    s = np.array([[0.5, 0.9, 0.0], [0.1, 0.9, 0.0], [0.0, 0.0, 1.0]])
    assert retrieval_recall(s, ks=1)[1] == pytest.approx(2 / 3)
    assert retrieval_recall(s, ks=1, ids=[7, 7, 3])[1] == pytest.approx(1.0)
    # distinct queries against a larger gallery: query 0 looks for id 7 (items 0, 1), query 1 for id 3 (item 2)
    assert retrieval_recall(s[[0, 2]], ks=1, ids=[7, 7, 3], query_ids=[7, 3])[1] == pytest.approx(1.0)
    both = bidirectional_recall(s, ks=(1,))
    assert set(both) == {"image->text", "text->image"}


def test_recall_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at most the gallery size 3"):
        retrieval_recall(np.eye(3), ks=(1, 5))
    with pytest.raises(ValueError, match="n_gallery >= n_queries"):
        retrieval_recall(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="`k` must be an int >= 1"):
        retrieval_recall(np.eye(3), ks=(0,))
    with pytest.raises(ValueError, match="one id per gallery item"):
        retrieval_recall(np.eye(3), ks=1, ids=[0, 1])
    with pytest.raises(ValueError, match="must occur in `ids`"):
        retrieval_recall(np.eye(3)[:2], ks=1, ids=[0, 1, 2], query_ids=[0, 9])


# === CLIPModel ===

def test_shapes_eager_symbolic_and_batch_of_one_and_unit_norm():
    keras.utils.set_random_seed(0)
    model = tiny_model()
    x = batch(3)
    numbers = model_inputs(model, x)  # the preprocessor's outputs: captions -> token ids
    assert numbers["text"].dtype == np.int32 and numbers["text"].shape == (3, 8)
    check_shapes(model, numbers, (3, 8))
    out = model(numbers)
    for key in ("image", "text"):
        np.testing.assert_allclose(np.linalg.norm(keras.ops.convert_to_numpy(out[key]), axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(model.encode_image(x["image"]), keras.ops.convert_to_numpy(out["image"]), atol=1e-5)
    np.testing.assert_allclose(model.encode_text(x["text"]), keras.ops.convert_to_numpy(out["text"]), atol=1e-5)
    predicted = model.predict(x, verbose=0)  # raw captions: keras-hub's Task maps the preprocessor
    np.testing.assert_allclose(predicted["text"], keras.ops.convert_to_numpy(out["text"]), atol=1e-5)
    with pytest.raises(ValueError, match="preprocessor"):
        model(x)  # strings in a direct call: keras-hub's message names the preprocessor


def test_the_split_model_computes_what_the_tokenizer_inside_computes():
    """`build_clip_model()` tokenizes beside the model; `preprocessor=None` inside. Same weights, same embeddings."""
    keras.utils.set_random_seed(0)
    split, inside = tiny_model(), tiny_model(preprocessor=None)
    assert split.preprocessor is not None and inside.preprocessor is None
    assert split.text_encoder.inputs[0].dtype == "int32" and inside.text_encoder.inputs[0].dtype == "string"
    inside.set_weights(split.get_weights())  # the tokenizer has no weights: the lists line up
    x = batch(4)
    np.testing.assert_allclose(split.similarity(x["image"], x["text"]), inside.similarity(x["image"], x["text"]),
                               atol=1e-6)
    out = inside({k: tf.constant(v) for k, v in x.items()})  # strings in the graph: a direct call takes them
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out["text"]), split.encode_text(x["text"]), atol=1e-6)


def test_config_round_trip_and_save_load_give_equal_embeddings(tmp_path):
    keras.utils.set_random_seed(0)
    model = tiny_model(temperature=0.2)
    check_config_round_trip(model)
    model.log_temperature.assign(1.5)
    loaded = check_save_load(model, batch(3), tmp_path)
    assert isinstance(loaded, CLIPModel)
    assert loaded.logit_scale == pytest.approx(math.exp(1.5), rel=1e-6)


def test_every_trainable_weight_including_the_temperature_gets_a_gradient():
    keras.utils.set_random_seed(0)
    model = tiny_model()
    x = model_inputs(model, batch(4))
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x, y_pred=model(x, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    names = [w.path for w in model.trainable_weights]
    assert any("log_temperature" in n for n in names)
    missing = [n for n, g in zip(names, grads) if g is None or not np.any(keras.ops.convert_to_numpy(g))]
    assert not missing, missing


def test_fixed_temperature_is_not_trained():
    model = tiny_model(temperature=1.0, learn_temperature=False)
    assert not any("log_temperature" in w.path for w in model.trainable_weights)
    assert model.temperature == pytest.approx(1.0)


def test_fit_without_labels_lowers_the_loss_and_logs_the_temperature():
    keras.utils.set_random_seed(0)
    scenes = make_scenes(16, seed=3)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)  # eager: no tracing, faster here
    ds = clip_dataset(scenes, batch_size=16)
    before = model.evaluate(ds, verbose=0, return_dict=True)["loss"]
    history = model.fit(ds, epochs=8, verbose=0, shuffle=False).history
    after = model.evaluate(ds, verbose=0, return_dict=True)["loss"]
    assert after < before
    assert len(history["temperature"]) == 8


def test_same_seed_same_numbers():
    def run():
        keras.utils.set_random_seed(5)
        model = tiny_model()
        model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)  # eager: no tracing, faster here
        model.fit(clip_dataset(make_scenes(8, seed=1), batch_size=8), epochs=2, verbose=0, shuffle=False)
        return model.similarity(batch(4)["image"], batch(4)["text"])

    np.testing.assert_array_equal(run(), run())


def test_batch_of_one_trains_with_zero_loss():
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(run_eagerly=True)
    logs = model.train_on_batch({k: v[:1] for k, v in batch(2).items()}, return_dict=True)
    assert logs["loss"] == pytest.approx(0.0, abs=1e-6)


def test_bad_arguments_raise():
    model = tiny_model()
    with pytest.raises(ValueError, match="must be a keras.Model"):
        CLIPModel("not a model", model.text_encoder)
    with pytest.raises(ValueError, match="embedding_dim"):
        CLIPModel(model.image_encoder, model.text_encoder, embedding_dim=0)
    with pytest.raises(ValueError, match="temperature"):
        CLIPModel(model.image_encoder, model.text_encoder, temperature=0.001)  # below 1 / max_scale
    with pytest.raises(ValueError, match="do not pass `loss`"):
        model.compile(loss="mse")
    with pytest.raises(ValueError, match="exactly the model's modalities"):
        CLIPModel(model.image_encoder, model.text_encoder, preprocessor=model.preprocessor.__class__(
            {"text": None}, {"text": {"shape": [], "dtype": "string"}}))
    with pytest.raises(ValueError, match="preprocessor"):
        build_clip_model(preprocessor="inside")
    with pytest.raises(ValueError, match="one id per prompt"):
        zero_shot_attributes(model, batch(2)["image"], ["a red circle"], {"color": [0, 1]})


def test_zero_shot_returns_a_distribution_per_attribute():
    captions, labels = scene_prompts()
    assert len(set(captions)) == 540
    keras.utils.set_random_seed(0)
    results = zero_shot_attributes(tiny_model(), batch(3)["image"])
    assert set(results) == {"shape", "color", "size", "position"}
    predicted, probabilities = results["color"]
    assert predicted.shape == (3,) and probabilities.shape == (3, 6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
