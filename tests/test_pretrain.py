"""Pretrain, then transfer: MLM and pretext pretraining, preset round trips, freeze/unfreeze, fine-tuning, errors.

Everything is tiny (one Transformer layer of width 16, CNNs of 4-8 filters, a few dozen samples), so the file
runs in well under a minute on two CPU cores.
"""

from __future__ import annotations

import keras
import keras_hub
import numpy as np
import pytest

from mmkeras import pretrain
from mmkeras.encoders.text import learn_vocabulary
from mmkeras.pretrain import (
    ConvBackbone,
    augmented_dataset,
    batch_norm_layers,
    build_image_classifier,
    build_masked_lm,
    caption_corpus,
    caption_word_targets,
    fine_tune,
    fine_tune_top,
    freeze,
    label_preserving_augmentation,
    load_text_classifier,
    pretrain_image_backbone,
    pretrain_masked_lm,
    reestimate_batch_norm,
    rotation_pretext,
    train_from_scratch,
    train_head,
    trainable_layers,
    unfreeze_top,
)

TINY_BERT = {"num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32}


@pytest.fixture(scope="module")
def corpus():
    return caption_corpus(48, 48, seed=3)


@pytest.fixture(scope="module")
def vocabulary(corpus):
    return learn_vocabulary(corpus)


def _tiny_masked_lm(vocabulary, **kwargs):
    keras.utils.set_random_seed(0)
    return build_masked_lm(vocabulary, sequence_length=12, dropout=0.0, **(TINY_BERT | kwargs))


def _tiny_images(n=24, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    images = rng.uniform(0, 0.2, size=(n, 32, 32, 3)).astype("float32")
    images[labels == 1, 8:24, 8:24, 0] = 0.9  # class 1: a red square in the middle
    return images, labels.astype("int32")


# --- text: masked language modelling ---------------------------------------------------------------------------


def test_corpus_holds_both_datasets_captions(corpus):
    assert corpus.shape == (96,)
    assert any("toy" in c or "object" in c or "thing" in c or "item" in c for c in corpus[:48])
    assert all(str(c).startswith("a ") for c in corpus[48:])  # scene captions: "a small red cross ..."


def test_masked_lm_preprocessor_masks_about_15_percent_with_80_10_10(vocabulary):
    import tensorflow as tf

    masked_lm = build_masked_lm(vocabulary, sequence_length=12, mask_selection_length=10, **TINY_BERT)
    pre = masked_lm.preprocessor
    assert (pre.mask_selection_rate, pre.mask_token_rate, pre.random_token_rate) == (0.15, 0.8, 0.1)
    texts = tf.constant(["a small red cross at the top left"] * 400)
    x, y, weights = pre(texts)
    selected = weights.numpy().sum()
    real = x["padding_mask"].numpy().sum() - 2 * 400  # [CLS] and [SEP] are never picked
    assert 0.11 < selected / real < 0.19
    positions, ids = x["mask_positions"].numpy(), x["token_ids"].numpy()
    picked = ids[np.arange(400)[:, None], positions][weights.numpy() > 0]
    mask_id = pre.tokenizer.token_to_id("[MASK]")
    assert 0.7 < np.mean(picked == mask_id) < 0.9
    assert 0.03 < np.mean(picked == y.numpy()[weights.numpy() > 0]) < 0.2  # kept unchanged (+ random hits)


def test_masked_lm_loss_goes_down(corpus, vocabulary):
    masked_lm = _tiny_masked_lm(vocabulary)
    history = pretrain_masked_lm(masked_lm, corpus, epochs=6, batch_size=32, learning_rate=5e-3)
    losses = history.history["loss"]
    assert losses[-1] < losses[0] - 0.2 and losses[-1] == min(losses), losses


def test_masked_lm_pretraining_is_repeatable_and_masks_15_percent(corpus, vocabulary):
    """The same seeds give the same BERT (the masks are drawn eagerly, in order), and what `fit` trains on is
    masked at BERT's rate: each epoch's batches pass through the preprocessor's own 15 %."""
    import tensorflow as tf

    weights = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        masked_lm = _tiny_masked_lm(vocabulary)
        pretrain_masked_lm(masked_lm, corpus, epochs=2, batch_size=32)
        weights.append([w.numpy() for w in masked_lm.weights])
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    assert masked_lm.preprocessor is not None  # handed back after `fit`

    seen = []
    original = masked_lm.fit

    def spy(train, **kwargs):
        seen.extend(train)
        return original(train, **kwargs)

    masked_lm.fit = spy
    pretrain_masked_lm(masked_lm, np.array(["a small red cross at the top left"] * 400), epochs=1, batch_size=100)
    x, _, weights = (tf.concat([b[i] for b in seen], 0) if i else {k: tf.concat([b[0][k] for b in seen], 0)
                                                                 for k in seen[0][0]} for i in range(3))
    picked = weights.numpy().sum() / (x["padding_mask"].numpy().sum() - 2 * 400)
    assert 0.12 < picked < 0.18, picked


def test_bert_preset_round_trip_gives_the_same_outputs(tmp_path, vocabulary):
    masked_lm = _tiny_masked_lm(vocabulary)
    masked_lm.save_to_preset(str(tmp_path))
    backbone = keras_hub.models.BertBackbone.from_preset(str(tmp_path))  # the call a real preset name takes
    tokenizer = keras_hub.tokenizers.BertTokenizer.from_preset(str(tmp_path))
    assert tokenizer.get_vocabulary() == masked_lm.preprocessor.tokenizer.get_vocabulary()
    ids = np.array([[2, 5, 6, 7, 3, 0, 0, 0, 0, 0, 0, 0]], dtype="int32")
    inputs = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": ids > 0}
    want = masked_lm.backbone(inputs)["sequence_output"]
    np.testing.assert_allclose(backbone(inputs)["sequence_output"], want, atol=1e-5)
    reloaded = keras_hub.models.BertMaskedLM.from_preset(str(tmp_path))  # the whole task, head included
    assert reloaded.preprocessor.mask_selection_rate == 0.15


def test_text_classifier_from_preset_fine_tunes(tmp_path, vocabulary):
    masked_lm = _tiny_masked_lm(vocabulary)
    masked_lm.save_to_preset(str(tmp_path))
    classifier = load_text_classifier(str(tmp_path), num_classes=2, sequence_length=12)
    assert classifier.preprocessor.sequence_length == 12
    texts = np.array(["a red toy moves to the left", "a blue toy moves to the right"] * 8)
    labels = np.array([0, 1] * 8)
    result = fine_tune(classifier, (texts, labels), head_epochs=1, fine_tune_epochs=2, unfreeze_layers=2,
                       head_learning_rate=1e-2, fine_tune_learning_rate=3e-3, batch_size=16)
    assert result["unfrozen"] == ["transformer_layer_0", "pooled_dense"]
    assert len(result["fine_tune"].history["loss"]) == 2
    assert np.isfinite(result["fine_tune"].history["loss"]).all()
    # the captions were tokenized once, outside `fit`; the task got its preprocessor back and reads strings
    assert classifier.preprocessor is not None and classifier.predict(texts[:2], verbose=0).shape == (2, 2)


def test_a_failing_fit_gives_the_task_its_preprocessor_back(tmp_path, vocabulary):
    masked_lm = _tiny_masked_lm(vocabulary)
    masked_lm.save_to_preset(str(tmp_path))
    classifier = load_text_classifier(str(tmp_path), num_classes=2, sequence_length=12)
    preprocessor = classifier.preprocessor
    with pytest.raises(Exception):  # noqa: B017 - labels out of range: whatever `fit` raises
        train_from_scratch(classifier, (np.array(["a red toy"] * 4), np.array([0, 1, 5, 7])), epochs=1,
                           batch_size=4)
    assert classifier.preprocessor is preprocessor


# --- images: backbone, pretext tasks, preset ---------------------------------------------------------------------


def test_conv_backbone_preset_round_trip_gives_the_same_outputs(tmp_path):
    keras.utils.set_random_seed(0)
    backbone = ConvBackbone(stackwise_num_filters=(4, 8))
    images, _ = _tiny_images(4)
    backbone.save_to_preset(str(tmp_path))
    loaded = keras_hub.models.Backbone.from_preset(str(tmp_path))  # the call "resnet_18_imagenet" takes
    assert isinstance(loaded, ConvBackbone) and loaded.stackwise_num_filters == (4, 8)
    np.testing.assert_allclose(loaded(images), backbone(images), atol=1e-6)
    assert ConvBackbone.from_config(backbone.get_config()).count_params() == backbone.count_params()


def test_caption_word_pretext_lowers_its_loss():
    from mmkeras.data import load_scene_splits
    from mmkeras.data.scenes import SCENE_VOCABULARY

    keras.utils.set_random_seed(0)
    scenes = load_scene_splits(48, 1, 1, seed=5)["train"]
    backbone = ConvBackbone(stackwise_num_filters=(4, 8))
    model, history = pretrain_image_backbone(backbone, scenes.features["image"], texts=scenes.features["text"],
                                             vocabulary=SCENE_VOCABULARY, epochs=4, batch_size=16,
                                             learning_rate=1e-2)
    assert model.backbone is backbone
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_rotation_pretext_rotates_by_the_returned_quarter_turns():
    images = np.random.default_rng(0).uniform(size=(16, 6, 6, 3)).astype("float32")
    rotated, k = rotation_pretext(images, seed=1)
    assert set(np.unique(k)) <= {0, 1, 2, 3} and len(np.unique(k)) > 1
    for image, turned, quarter in zip(images, rotated, k):
        np.testing.assert_array_equal(np.rot90(turned, -int(quarter), axes=(0, 1)), image)
    keras.utils.set_random_seed(0)
    _, history = pretrain_image_backbone(ConvBackbone((6, 6, 3), (4,)), images, pretext="rotation", epochs=1,
                                         batch_size=16)
    assert np.isfinite(history.history["loss"][0])


def test_caption_word_targets_are_multi_hot():
    targets = caption_word_targets(["A red toy", "blue", "unknown words"], ["red", "blue", "toy"])
    np.testing.assert_array_equal(targets, [[1, 0, 1], [0, 1, 0], [0, 0, 0]])


# --- freezing and fine-tuning -------------------------------------------------------------------------------------


def test_freeze_and_unfreeze_top_set_the_flags_they_claim():
    backbone = ConvBackbone(stackwise_num_filters=(4, 8))
    classifier = build_image_classifier(backbone, num_classes=3)
    freeze(backbone)
    assert not any(trainable_layers(backbone).values())
    assert len(backbone.trainable_weights) == 0
    assert [w.path for w in classifier.trainable_weights] == ["predictions/kernel", "predictions/bias"]
    names = unfreeze_top(backbone, 3)
    flags = trainable_layers(backbone)
    assert names == ["stack1_bn0", "stack1_conv1", "stack1_bn1"] == [n for n, t in flags.items() if t]
    assert list(flags.values()) == [False] * 5 + [True] * 3
    assert len(backbone.trainable_weights) == 2 + 1 + 2  # two BN (gamma, beta) + one conv kernel
    assert unfreeze_top(backbone) == list(flags) and all(trainable_layers(backbone).values())


def test_frozen_backbone_does_not_move_during_the_head_stage():
    keras.utils.set_random_seed(0)
    images, labels = _tiny_images(24)
    backbone = ConvBackbone(stackwise_num_filters=(4, 8))
    classifier = build_image_classifier(backbone, num_classes=2)
    before = [w.numpy().copy() for w in backbone.weights]  # BN moving statistics included
    result = fine_tune(classifier, (images, labels), validation=(images, labels), head_epochs=2, fine_tune_epochs=0)
    assert result["fine_tune"] is None and "val_accuracy" in result["head"].history
    for w, b in zip(backbone.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)
    history = train_head(classifier, (images, labels), epochs=1, head_layers=2)  # the top conv + BN train too
    assert len(history.history["loss"]) == 1
    history, names = fine_tune_top(classifier, (images, labels), epochs=1, unfreeze_layers=2)
    assert names == ["stack1_conv1", "stack1_bn1"]
    moved = [not np.array_equal(w.numpy(), b) for w, b in zip(backbone.weights, before)]
    assert any(moved) and not all(moved)  # the top moved, the bottom did not


def test_tiny_image_fine_tune_with_augmentation_runs_and_scratch_learns():
    keras.utils.set_random_seed(0)
    images, labels = _tiny_images(32)
    classifier = build_image_classifier(ConvBackbone(stackwise_num_filters=(4, 8)), num_classes=2)
    ds = augmented_dataset(images, labels, 2, batch_size=16, mix="cutmix", seed=0)
    result = fine_tune(classifier, ds, validation=(images, labels), head_epochs=1, fine_tune_epochs=2,
                       one_hot_classes=2)
    assert len(result["head"].history["val_accuracy"]) == 1 and len(result["fine_tune"].history["loss"]) == 2
    assert np.isfinite(result["fine_tune"].history["loss"]).all()
    scratch = build_image_classifier(ConvBackbone(stackwise_num_filters=(4, 8)), num_classes=2)
    history = train_from_scratch(scratch, (images, labels), epochs=6, learning_rate=1e-2, batch_size=16)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert all(layer.trainable for layer in scratch.backbone.layers)
    predicted = np.argmax(scratch.predict(images, verbose=0), axis=-1)
    assert pretrain.accuracy(scratch, images, labels) == pytest.approx(np.mean(predicted == labels))


def test_augmented_dataset_mixes_labels_and_keeps_the_value_range():
    images, labels = _tiny_images(16)
    x, y = next(iter(augmented_dataset(images, labels, 2, batch_size=16, mix="mixup", seed=1)))
    y = y.numpy()
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    assert ((y > 0.01) & (y < 0.99)).any()  # MixUp made soft labels
    assert x.numpy().min() >= 0.0 and x.numpy().max() <= 1.0
    _, hard = next(iter(augmented_dataset(images, labels, 2, batch_size=16, mix=None, augment=False,
                                          shuffle=False)))
    np.testing.assert_array_equal(hard.numpy().argmax(axis=1), labels)


# --- augmentation that keeps the label ---------------------------------------------------------------------------


def _color_reading(images):
    """1 where an image is more blue than red overall: the toys' colour (red 0, blue 1) on a gray background."""
    images = np.asarray(images)
    return (np.sum(images[..., 2] - images[..., 0], axis=(1, 2)) > 0).astype(int)


@pytest.fixture(scope="module")
def toy_images():
    from mmkeras.data import load_splits

    train = load_splits(256, 1, 1, seed=4)["train"]
    working = ~train.meta["image_failed"]  # a failed camera shows noise: no colour to read
    images, colors = train.features["image"][working], train.labels["color"][working]
    assert np.mean(_color_reading(images) == colors) > 0.99  # the reading works on the originals
    return images, colors


def test_augmentation_keeps_the_colour_of_every_toy(toy_images):
    images, colors = toy_images
    ds = augmented_dataset(images, colors, 2, batch_size=32, mix=None, shuffle=False, seed=0)
    augmented = np.concatenate([x.numpy() for x, _ in ds])
    assert not np.allclose(augmented, images, atol=1e-3)  # it did change the images
    np.testing.assert_array_equal(_color_reading(augmented), colors)


def test_the_colour_check_catches_rand_augment(toy_images):
    """The same check fails for keras's RandAugment (the augmentation this module used to apply, per batch):
    its solarization, posterization, equalization, ... change colours, so the check is able to fail."""
    images, colors = toy_images
    rand_augment = keras.layers.RandAugment(value_range=(0, 1), num_ops=2, factor=0.3, seed=0)
    augmented = np.concatenate([np.clip(rand_augment(images[i:i + 16], training=True), 0, 1)
                                for i in range(0, len(images), 16)])
    assert np.mean(_color_reading(augmented) != colors) > 0.05


def test_two_images_of_one_batch_get_different_transforms():
    image = np.random.default_rng(0).random((1, 32, 32, 3), dtype="float32")
    copies = np.repeat(image, 16, axis=0)
    x, _ = next(iter(augmented_dataset(copies, np.zeros(16, "int32"), 2, batch_size=16, mix=None, shuffle=False)))
    x = x.numpy()
    assert len({im.tobytes() for im in x}) == 16  # sixteen copies of one image, sixteen different results
    flips_only = label_preserving_augmentation(rotation=0, translation=0, zoom=0, brightness=0, contrast=0, seed=3)
    flipped = flips_only(copies, training=True).numpy()
    seen = {(np.array_equal(f, image[0, :, ::-1]) or np.array_equal(f, image[0, ::-1, ::-1]),
             np.array_equal(f, image[0, ::-1]) or np.array_equal(f, image[0, ::-1, ::-1])) for f in flipped}
    assert len(seen) > 2  # horizontal and vertical flips drawn independently, per image


def test_augmentation_is_reproducible_from_its_seed():
    images, labels = _tiny_images(16)

    def first(seed):
        return next(iter(augmented_dataset(images, labels, 2, batch_size=16, seed=seed)))[0].numpy()

    np.testing.assert_array_equal(first(0), first(0))
    assert not np.allclose(first(0), first(1))


# --- BatchNorm statistics of short runs --------------------------------------------------------------------------


def _trained_tiny_cnn(momentum, steps_epochs=10):
    keras.utils.set_random_seed(0)
    images, labels = _tiny_images(32)
    classifier = build_image_classifier(ConvBackbone(stackwise_num_filters=(4, 8), batch_norm_momentum=momentum), 2)
    history = train_from_scratch(classifier, (images, labels), epochs=steps_epochs, learning_rate=1e-2,
                                 batch_size=16)  # 2 steps per epoch
    return classifier, history, images, labels


def test_conv_backbone_uses_momentum_0_9_and_saves_it():
    backbone = ConvBackbone(stackwise_num_filters=(4, 8))
    assert [layer.momentum for layer in batch_norm_layers(backbone)] == [0.9] * 4
    config = ConvBackbone(stackwise_num_filters=(4,), batch_norm_momentum=0.5).get_config()
    assert config["batch_norm_momentum"] == 0.5
    assert {layer.momentum for layer in batch_norm_layers(ConvBackbone.from_config(config))} == {0.5}
    assert len(batch_norm_layers(build_image_classifier(backbone, 2))) == 4  # found inside the task model too


def test_lagging_batch_norm_statistics_make_a_tiny_cnn_predict_one_class():
    """20 steps at Keras's default momentum 0.99: training accuracy 1.0 in `fit`, one class in inference mode.
    Momentum 0.9 or re-estimated statistics predict both classes and fit the training images."""
    lagging, history, images, labels = _trained_tiny_cnn(0.99)
    assert history.history["accuracy"][-1] == 1.0
    assert len(np.unique(np.argmax(lagging.predict(images, verbose=0), axis=-1))) == 1
    assert pretrain.accuracy(lagging, images, labels) < 0.75
    reestimate_batch_norm(lagging, images)
    assert pretrain.accuracy(lagging, images, labels) == 1.0

    fixed, _, _, _ = _trained_tiny_cnn(0.9)
    assert len(np.unique(np.argmax(fixed.predict(images, verbose=0), axis=-1))) == 2
    assert pretrain.accuracy(fixed, images, labels) > 0.85


def test_precise_batch_norm_during_fit_fixes_the_validation_curve_and_the_model():
    keras.utils.set_random_seed(0)
    images, labels = _tiny_images(32)
    classifier = build_image_classifier(ConvBackbone(stackwise_num_filters=(4, 8), batch_norm_momentum=0.99), 2)
    history = train_from_scratch(classifier, (images, labels), validation=(images, labels), epochs=10,
                                 learning_rate=1e-2, batch_size=16, batch_norm_images=images)
    assert history.history["val_accuracy"][-1] == pretrain.accuracy(classifier, images, labels) == 1.0


def test_reestimated_statistics_are_the_moments_of_the_layer_inputs():
    keras.utils.set_random_seed(0)
    images, _ = _tiny_images(32)
    classifier = build_image_classifier(ConvBackbone(stackwise_num_filters=(4, 8)), 2)
    backbone = classifier.backbone
    first_conv = keras.Model(backbone.input, backbone.get_layer("stack0_conv0").output)
    features = first_conv(images).numpy()  # (32, 32, 32, 4): the input of stack0_bn0
    names = reestimate_batch_norm(classifier, images, batch_size=8)  # four batches of 8
    assert names == [layer.name for layer in batch_norm_layers(backbone)]
    bn = backbone.get_layer("stack0_bn0")
    np.testing.assert_allclose(bn.moving_mean.numpy(), features.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    batch_variances = np.mean([features[i:i + 8].var(axis=(0, 1, 2)) for i in range(0, 32, 8)], axis=0)
    np.testing.assert_allclose(bn.moving_variance.numpy(), batch_variances, rtol=1e-4, atol=1e-6)
    assert bn.momentum == 0.9  # restored


def test_reestimation_leaves_frozen_batch_norm_and_the_weights_alone():
    keras.utils.set_random_seed(0)
    images, _ = _tiny_images(8)
    classifier = build_image_classifier(ConvBackbone(stackwise_num_filters=(4,)), 2)
    freeze(classifier.backbone)
    before = [w.numpy().copy() for w in classifier.weights]
    assert reestimate_batch_norm(classifier, images) == []
    for w, b in zip(classifier.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)
    unfreeze_top(classifier.backbone)
    assert reestimate_batch_norm(classifier, images) == ["stack0_bn0", "stack0_bn1"]
    changed = [not np.array_equal(w.numpy(), b) for w, b in zip(classifier.weights, before)]
    assert sum(changed) == 4  # the two layers' moving mean and variance, nothing else
    assert all("moving" in w.path for w, c in zip(classifier.weights, changed) if c)


# --- bad arguments ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda v: build_masked_lm(v, mask_selection_rate=0.0), "mask_selection_rate"),
        (lambda v: build_masked_lm(v, mask_token_rate=0.95, random_token_rate=0.1), "mask_token_rate"),
        (lambda v: build_masked_lm(v, hidden_dim=30, num_heads=4), "hidden_dim"),
        (lambda v: build_masked_lm(v, sequence_length=2), "sequence_length"),
        (lambda v: build_masked_lm([]), "vocabulary"),
        (lambda v: ConvBackbone(stackwise_num_filters=()), "stackwise_num_filters"),
        (lambda v: ConvBackbone(image_shape=(32, 32)), "image_shape"),
        (lambda v: unfreeze_top(ConvBackbone(stackwise_num_filters=(4,)), 5), "num_layers"),
        (lambda v: unfreeze_top(ConvBackbone(stackwise_num_filters=(4,)), 0), "num_layers"),
        (lambda v: freeze("backbone"), "model"),
        (lambda v: fine_tune(keras.Sequential([keras.layers.Dense(2)]), (None, None)), "backbone"),
        (lambda v: pretrain_image_backbone(ConvBackbone(stackwise_num_filters=(4,)), np.zeros((2, 32, 32, 3))),
         "texts"),
        (lambda v: pretrain_image_backbone(ConvBackbone(stackwise_num_filters=(4,)), np.zeros((2, 32, 32, 3)),
                                           pretext="jigsaw"), "pretext"),
        (lambda v: rotation_pretext(np.zeros((2, 4, 6, 3))), "images"),
        (lambda v: augmented_dataset(np.zeros((2, 8, 8, 3)), [0, 2], 2), "labels"),
        (lambda v: augmented_dataset(np.zeros((2, 8, 8, 3)), [0, 1], 2, mix="cutout"), "mix"),
        (lambda v: augmented_dataset(np.zeros((2, 8, 8, 3)), [0, 1], 2, augment="yes"), "augment"),
        (lambda v: label_preserving_augmentation(rotation=1.5), "rotation"),
        (lambda v: ConvBackbone(stackwise_num_filters=(4,), batch_norm_momentum=1.0), "batch_norm_momentum"),
        (lambda v: reestimate_batch_norm(ConvBackbone(stackwise_num_filters=(4,)), np.zeros((0, 32, 32, 3))),
         "images"),
        (lambda v: caption_corpus(0, 4), "toy_size"),
        (lambda v: pretrain_masked_lm(None, []), "texts"),
        (lambda v: pretrain.save_course_presets("/tmp/unused", bert_sizes={"layers": 1}), "bert_sizes"),
    ],
)
def test_bad_arguments_raise(vocabulary, call, match):
    with pytest.raises(ValueError, match=match):
        call(vocabulary)


def test_save_course_presets_writes_loadable_presets(tmp_path):
    result = pretrain.save_course_presets(tmp_path, corpus_size=16, pool_size=16, mlm_epochs=1, pretext_epochs=1,
                                          bert_sizes=TINY_BERT, filters=(4,))
    assert keras_hub.models.BertBackbone.from_preset(result["bert"]).hidden_dim == 16
    assert isinstance(keras_hub.models.Backbone.from_preset(result["cnn"]), ConvBackbone)
    assert all(np.isfinite(result["mlm_loss"] + result["pretext_loss"]))


def test_cli_pretrain_writes_presets_that_from_preset_loads(tmp_path, capsys):
    from mmkeras.apps.cli import main

    out = tmp_path / "presets"
    code = main(["pretrain", str(out), "--mlm-epochs", "1", "--pretext-epochs", "1", "--corpus-size", "16",
                 "--pool-size", "16", "--pretext", "rotation", "--json", str(tmp_path / "r.json")])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "from_preset" in printed and str(out / "cnn_rotation") in printed
    assert keras_hub.models.BertBackbone.from_preset(str(out / "bert_captions_tiny")).num_layers == 2
    assert isinstance(keras_hub.models.Backbone.from_preset(str(out / "cnn_rotation")), ConvBackbone)
    (tmp_path / "a_file").write_text("x")
    assert main(["pretrain", str(tmp_path / "a_file")]) == 2
    assert "must be a folder" in capsys.readouterr().err
