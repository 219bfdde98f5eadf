"""The GAN chapter: the two players' losses, DCGAN / conditional GAN models, captions -> conditions, sample
grids, and the generator metrics (Fréchet distance, conditional accuracy, diversity).

Everything runs on tiny models (4 filters, 8-d noise) and tiny batches. Training uses the TensorFlow backend.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mmkeras.data.scenes import SCENE_ATTRIBUTES, SCENE_VALUES, SCENE_VOCABULARY, describe, make_scenes
from mmkeras.generative import (
    CONDITION_BLOCKS,
    CONDITION_DIM,
    GAN,
    ConditionalGAN,
    SampleGrid,
    attribute_accuracy,
    attributes_to_condition,
    auxiliary_loss,
    build_attribute_classifier,
    build_discriminator,
    build_generator,
    caption_to_condition,
    condition_to_attributes,
    conditional_accuracy,
    discriminator_loss,
    diversity,
    evaluate_generator,
    feature_extractor,
    frechet_distance,
    frechet_distance_from_moments,
    generator_loss,
    labels_to_condition,
    mean_pairwise_distance,
    saturating_generator_loss,
    tile_images,
    to_tanh_range,
)
from mmkeras.testing import check_config_round_trip, check_gradients, check_save_load, check_shapes

LATENT = 8


def _softplus(x):
    return np.log1p(np.exp(x))


def _tiny_gan(conditional=True, seed=0, auxiliary=False):
    condition_dim = CONDITION_DIM if conditional else 0
    cls = ConditionalGAN if conditional else GAN
    kwargs = {"auxiliary_weight": 0.5, "condition_blocks": CONDITION_BLOCKS} if auxiliary else {}
    return cls(build_generator(LATENT, condition_dim, filters=4),
               build_discriminator(condition_dim, filters=4, auxiliary=auxiliary), seed=seed, **kwargs)


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(16, seed=3)


def _batch(scenes, n=8):
    images = to_tanh_range(scenes.features["image"][:n])
    return images, labels_to_condition({a: v[:n] for a, v in scenes.labels.items()})


def _tensors(*arrays):
    return [keras.ops.convert_to_tensor(a) for a in arrays]


# ------------------------------------------------------------------------------------------- losses


def test_losses_match_hand_computed_values():
    real, fake = np.array([[2.0], [-1.0]]), np.array([[0.5], [-3.0]])
    d_real, d_fake = 1 / (1 + np.exp(-real)), 1 / (1 + np.exp(-fake))  # D = sigmoid(logit)
    expected_d = np.mean(-np.log(d_real)) + np.mean(-np.log(1 - d_fake))  # -log D(x) - log(1 - D(G(z)))
    assert float(discriminator_loss(real, fake)) == pytest.approx(expected_d, rel=1e-5)
    assert float(generator_loss(fake)) == pytest.approx(np.mean(-np.log(d_fake)), rel=1e-5)  # -log D(G(z))
    assert float(saturating_generator_loss(fake)) == pytest.approx(np.mean(np.log(1 - d_fake)), rel=1e-5)
    assert float(discriminator_loss(real, fake)) == pytest.approx(_softplus(-real).mean() + _softplus(fake).mean(),
                                                                  rel=1e-5)


def test_losses_are_stable_for_extreme_logits():
    big = np.array([[100.0], [-100.0]], dtype="float32")
    values = [float(discriminator_loss(big, big)), float(generator_loss(big)), float(saturating_generator_loss(big))]
    assert np.all(np.isfinite(values)), values
    assert float(generator_loss(np.array([[-100.0]]))) == pytest.approx(100.0, rel=1e-4)  # softplus(100) = 100


def _slope(loss, logit, h=1e-2):
    return (float(loss(np.array([[logit + h]]))) - float(loss(np.array([[logit - h]])))) / (2 * h)


def test_generator_loss_is_the_non_saturating_one():
    """Where D rejects the samples (logit -8, D(G(z)) = 3e-4), -log D has slope ~ -1, log(1 - D) ~ -3e-4."""
    non_saturating, saturating = _slope(generator_loss, -8.0), _slope(saturating_generator_loss, -8.0)
    assert non_saturating == pytest.approx(1 / (1 + np.exp(8.0)) - 1, abs=1e-3)  # sigmoid(l) - 1
    assert saturating == pytest.approx(-1 / (1 + np.exp(8.0)), rel=1e-2)  # -sigmoid(l)
    assert abs(non_saturating) > 1000 * abs(saturating)


def test_auxiliary_loss_matches_hand_computed_cross_entropies():
    logits = np.random.default_rng(0).normal(size=(3, CONDITION_DIM))
    ids = {"shape": [0, 4, 2], "color": [5, 0, 1], "size": [1, 0, 1], "position": [8, 3, 0]}
    condition = attributes_to_condition(*(ids[a] for a in SCENE_ATTRIBUTES))
    expected, start = np.zeros(3), 0
    for name in SCENE_ATTRIBUTES:  # -log softmax(block)[named value], summed over the four blocks
        block = logits[:, start:start + len(SCENE_VALUES[name])]
        log_p = block - np.log(np.exp(block).sum(-1, keepdims=True))
        expected -= log_p[np.arange(3), ids[name]]
        start += len(SCENE_VALUES[name])
    assert float(auxiliary_loss(logits, condition)) == pytest.approx(expected.mean(), rel=1e-5)
    assert float(auxiliary_loss(np.zeros((1, CONDITION_DIM)), condition[:1])) == pytest.approx(np.log(5 * 6 * 2 * 9))


# ------------------------------------------------------------------------------------------- models


def test_generator_and_discriminator_shapes_and_gradients(scenes):
    images, condition = _batch(scenes, 4)
    noise = np.random.default_rng(0).normal(size=(4, LATENT)).astype("float32")
    generator = build_generator(LATENT, CONDITION_DIM, filters=4)
    check_shapes(generator, [noise, condition], (4, 32, 32, 3))
    generated = keras.ops.convert_to_numpy(generator([noise, condition]))
    assert generated.min() >= -1 and generated.max() <= 1  # tanh
    discriminator = build_discriminator(CONDITION_DIM, filters=4)
    check_shapes(discriminator, [images, condition], (4, 1))
    check_gradients(generator, [noise, condition])
    check_gradients(discriminator, [images, condition])
    check_shapes(build_generator(LATENT, filters=4), noise, (4, 32, 32, 3))
    check_shapes(build_discriminator(filters=4), images, (4, 1))
    auxiliary = build_discriminator(CONDITION_DIM, filters=4, auxiliary=True)  # AC-GAN: logit and attributes
    logits, attributes = auxiliary([images, condition])
    assert tuple(logits.shape) == (4, 1) and tuple(attributes.shape) == (4, CONDITION_DIM)
    both = keras.Model(auxiliary.inputs, {"logit": auxiliary.outputs[0], "attributes": auxiliary.outputs[1]})
    check_gradients(both, [images, condition])  # (the helper takes one output or a dict of them)


@pytest.mark.parametrize("conditional, auxiliary", [(False, False), (True, False), (True, True)],
                         ids=["gan", "conditional", "ac-gan"])
def test_gan_save_load_and_config_round_trip(conditional, auxiliary, scenes, tmp_path):
    gan = _tiny_gan(conditional, auxiliary=auxiliary)
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5), run_eagerly=True)
    images, condition = _batch(scenes, 4)
    gan.fit(images, condition if conditional else None, batch_size=4, epochs=1, verbose=0)  # BN statistics move
    noise = np.random.default_rng(1).normal(size=(4, LATENT)).astype("float32")
    inputs = [noise, condition] if conditional else noise
    check_config_round_trip(gan)
    loaded = check_save_load(gan, inputs, tmp_path)
    assert type(loaded) is type(gan) and loaded.seed == gan.seed
    assert getattr(loaded, "auxiliary_weight", None) == getattr(gan, "auxiliary_weight", None)
    assert loaded.d_optimizer.learning_rate.numpy() == pytest.approx(1e-3)  # the optimizers' settings come back,
    assert int(loaded.g_optimizer.iterations.numpy()) == int(gan.g_optimizer.iterations.numpy()) == 1  # and state
    check_save_load(gan.generator, inputs, tmp_path)


def _d_loss(gan, images, condition, noise):
    images, condition, noise = _tensors(images, condition, noise)
    fake = gan.generator([noise, condition], training=False)
    real_logits = gan.discriminator([images, condition], training=True)
    return float(discriminator_loss(real_logits, gan.discriminator([fake, condition], training=True)))


def _g_loss(gan, condition, noise):
    condition, noise = _tensors(condition, noise)
    fake = gan.generator([noise, condition], training=True)
    return float(generator_loss(gan.discriminator([fake, condition], training=True)))


def test_discriminator_learns_when_the_generator_is_frozen(scenes):
    gan = _tiny_gan()
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5), g_optimizer=keras.optimizers.SGD(0.0),
                run_eagerly=True)
    images, condition = _batch(scenes)
    noise = np.random.default_rng(2).normal(size=(8, LATENT)).astype("float32")
    g_weights = [w.numpy().copy() for w in gan.generator.trainable_weights]
    before = _d_loss(gan, images, condition, noise)
    history = gan.fit(images, condition, batch_size=8, epochs=6, verbose=0)
    assert _d_loss(gan, images, condition, noise) < before
    assert history.history["d_loss"][-1] < history.history["d_loss"][0]
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(g_weights, gan.generator.trainable_weights))
    assert set(history.history) == {"d_loss", "g_loss", "d_real", "d_fake"}


def test_generator_learns_when_the_discriminator_is_frozen(scenes):
    gan = _tiny_gan()
    gan.compile(d_optimizer=keras.optimizers.SGD(0.0), g_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5),
                run_eagerly=True)
    images, condition = _batch(scenes)
    noise = np.random.default_rng(3).normal(size=(8, LATENT)).astype("float32")
    before = _g_loss(gan, condition, noise)
    gan.fit(images, condition, batch_size=8, epochs=5, verbose=0)
    assert _g_loss(gan, condition, noise) < before


def test_auxiliary_classifier_learns_and_the_adversarial_losses_are_unchanged(scenes):
    gan = _tiny_gan(auxiliary=True)
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5), g_optimizer=keras.optimizers.SGD(0.0),
                run_eagerly=True)
    images, condition = _batch(scenes)
    history = gan.fit(images, condition, batch_size=8, epochs=6, verbose=0).history
    assert set(history) == {"d_loss", "g_loss", "d_real", "d_fake", "aux_real", "aux_fake"}
    assert history["aux_real"][-1] < history["aux_real"][0]  # D learns to read the attributes of real images
    metrics = gan.evaluate(images, condition, batch_size=8, verbose=0, return_dict=True)
    logits = gan.discriminator([keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(condition)])[0]
    assert metrics["d_real"] == pytest.approx(float(keras.ops.mean(keras.ops.sigmoid(logits))), rel=1e-5)


def test_same_seed_same_samples():
    condition = caption_to_condition("a large blue circle in the center")
    samples = []
    for _ in range(2):
        keras.utils.set_random_seed(5)
        samples.append(_tiny_gan(seed=7).sample(3, condition))
    np.testing.assert_array_equal(samples[0], samples[1])
    keras.utils.set_random_seed(5)
    gan = _tiny_gan(seed=7)
    first, second = gan.sample(3, condition), gan.sample(3, condition)
    assert not np.allclose(first, second)  # the seed generator moves on
    assert samples[0].min() >= 0 and samples[0].max() <= 1


def test_unconditional_gan_trains_on_images_alone(scenes):
    gan = _tiny_gan(conditional=False)
    gan.compile()  # the compiled (tf.function) train step, once
    history = gan.fit(_batch(scenes)[0], batch_size=1, epochs=1, verbose=0)  # a batch of one works too
    assert np.isfinite(history.history["g_loss"]).all()
    assert gan.sample(2).shape == (2, 32, 32, 3)


# --------------------------------------------------------------------------------------- conditions


def test_every_caption_maps_to_its_attributes():
    for ids in np.ndindex(*(len(SCENE_VALUES[a]) for a in SCENE_ATTRIBUTES)):  # all 540 descriptions
        recovered = condition_to_attributes(caption_to_condition(describe(*ids)))
        assert [int(recovered[a][0]) for a in SCENE_ATTRIBUTES] == list(ids)
    condition = caption_to_condition("A large blue circle, in the center.")
    assert condition.shape == (CONDITION_DIM,) and condition.sum() == 4
    np.testing.assert_array_equal(condition, attributes_to_condition(0, 2, 1, 4)[0])
    assert caption_to_condition(["a small red cross at the top left", "a large cyan diamond on the right"]).shape \
        == (2, CONDITION_DIM)


def test_bad_captions_raise_with_clear_messages():
    with pytest.raises(ValueError, match=r"outside the scenes vocabulary: \['huge'\].*Known words: \["):
        caption_to_condition("a huge blue circle in the center")
    with pytest.raises(ValueError, match="exactly one size"):
        caption_to_condition("a blue circle in the center")
    with pytest.raises(ValueError, match="exactly one color"):
        caption_to_condition("a large red blue circle in the center")
    with pytest.raises(ValueError, match="must name a position"):
        caption_to_condition("a large blue circle")
    with pytest.raises(ValueError, match="contradicting positions"):
        caption_to_condition("a large blue circle at the top left in the center")
    with pytest.raises(ValueError, match="must be a str"):
        caption_to_condition([3])
    assert "huge" not in SCENE_VOCABULARY


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"`shape` must hold integer ids in \[0, 5\).*Received: shape=\[5\]"):
        attributes_to_condition(5, 0, 0, 0)
    with pytest.raises(ValueError, match="needs a generator with 2 input"):
        ConditionalGAN(build_generator(LATENT, filters=4), build_discriminator(CONDITION_DIM, filters=4))
    with pytest.raises(ValueError, match="must be keras.Model instances"):
        GAN("generator", build_discriminator(filters=4))
    gan = _tiny_gan()
    with pytest.raises(ValueError, match="pass `d_optimizer` and `g_optimizer`. Received: optimizer='adam'"):
        gan.compile(optimizer="adam")
    with pytest.raises(ValueError, match="needs a condition"):
        gan.sample(2)
    with pytest.raises(ValueError, match=r"`noise` must be \(n, 8\). Received: shape=\(2, 3\)"):
        gan.generate(np.zeros((2, 3)), caption_to_condition("a small red cross at the top left"))
    with pytest.raises(ValueError, match="`latent_dim` must be an int >= 1. Received: latent_dim=0"):
        build_generator(0)
    with pytest.raises(ValueError, match="divisible by 8"):
        build_generator(8, image_shape=(28, 28, 1))
    with pytest.raises(ValueError, match="takes no condition"):
        _tiny_gan(conditional=False).sample(2, np.zeros(CONDITION_DIM))
    with pytest.raises(ValueError, match="needs a condition.*Received: auxiliary=True, condition_dim=0"):
        build_discriminator(filters=4, auxiliary=True)
    with pytest.raises(ValueError, match="`auxiliary_weight` must be a number >= 0. Received: auxiliary_weight=-1"):
        ConditionalGAN(build_generator(LATENT, CONDITION_DIM, filters=4),
                       build_discriminator(CONDITION_DIM, filters=4, auxiliary=True), auxiliary_weight=-1)


# ------------------------------------------------------------------------------------------ callback


def test_sample_grid_keeps_arrays_and_writes_pngs(scenes, tmp_path):
    gan = _tiny_gan()
    gan.compile(run_eagerly=True)
    images, condition = _batch(scenes, 4)
    grid = SampleGrid(num_samples=4, conditions=condition, folder=tmp_path / "grids", columns=2, seed=1)
    gan.fit(images, condition, batch_size=4, epochs=2, verbose=0, callbacks=[grid])
    assert grid.epochs == [0, 1, 2] and [g.shape for g in grid.grids] == [(4, 32, 32, 3)] * 3
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == [f"epoch_00{k}.png" for k in range(3)]
    assert not np.allclose(grid.grids[0], grid.grids[-1])  # the generator changed, the noise did not
    np.testing.assert_allclose(grid.grids[-1], gan.generate(grid.noise, condition), atol=1e-6)
    assert tile_images(grid.grids[0], columns=2).shape == (67, 67, 3)
    with pytest.raises(ValueError, match=r"`conditions` must be \(num_samples=4"):
        SampleGrid(num_samples=4, conditions=condition[:2])


# ------------------------------------------------------------------------------------------- metrics


def test_frechet_distance_matches_gaussian_cases():
    # 1-D: (m_a - m_b)^2 + (s_a - s_b)^2
    assert frechet_distance_from_moments([1.0], [[4.0]], [-2.0], [[1.0]]) == pytest.approx(9.0 + 1.0)
    # 2-D, covariances that commute (same eigenvectors R): Tr((S_a S_b)^1/2) = sqrt(1 * 9) + sqrt(4 * 1) = 5
    rotation = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    s_a, s_b = rotation @ np.diag([1.0, 4.0]) @ rotation.T, rotation @ np.diag([9.0, 1.0]) @ rotation.T
    expected = (1.0**2 + 2.0**2) + (1 + 4) + (9 + 1) - 2 * 5
    assert frechet_distance_from_moments([0.0, 0.0], s_a, [1.0, 2.0], s_b) == pytest.approx(expected)
    x = np.random.default_rng(0).normal(size=(400, 5))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    y = np.random.default_rng(1).normal(size=(20000, 2)) * [1.0, 3.0] + [2.0, 0.0]
    z = np.random.default_rng(2).normal(size=(20000, 2))
    assert frechet_distance(y, z) == pytest.approx(4.0 + (3.0 - 1.0) ** 2, rel=0.05)  # 4 + 4
    with pytest.raises(ValueError, match="same d"):
        frechet_distance(x, x[:, :3])


def test_frechet_distance_agrees_with_scipy_on_non_commuting_covariances():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s_a, s_b = a @ a.T + 0.1 * np.eye(6), b @ b.T
    mu_a, mu_b = rng.normal(size=6), rng.normal(size=6)
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(s_a + s_b - 2 * linalg.sqrtm(s_a @ s_b).real)
    assert frechet_distance_from_moments(mu_a, s_a, mu_b, s_b) == pytest.approx(expected, rel=1e-6)


def test_mean_pairwise_distance_and_the_generator_report(scenes):
    assert mean_pairwise_distance([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]]) == pytest.approx((5 + 0 + 5) / 3)
    with pytest.raises(ValueError, match="n >= 2"):
        mean_pairwise_distance([[1.0, 2.0]])
    classifier = build_attribute_classifier(filters=(4, 4, 4), feature_dim=8)
    gan = _tiny_gan()
    accuracy = conditional_accuracy(gan, classifier, scenes.labels)
    assert set(accuracy) == {*SCENE_ATTRIBUTES, "mean", "joint"} and accuracy["joint"] <= min(accuracy.values())
    perfect = attribute_accuracy(classifier, scenes.features["image"], scenes.labels)
    assert 0 <= perfect["mean"] <= 1
    spread = diversity(gan, feature_extractor(classifier), num_conditions=2, per_condition=3)
    assert spread["ratio"] == pytest.approx(spread["generated"] / spread["real"])
    report = evaluate_generator(gan, classifier, scenes, diversity_conditions=2)
    assert report["frechet_distance"] >= 0 and report["frechet_real_real"] >= 0
