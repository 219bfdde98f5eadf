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
    build_image_classifier,
    build_masked_lm,
    caption_corpus,
    caption_word_targets,
    fine_tune,
    fine_tune_top,
    freeze,
    load_text_classifier,
    pretrain_image_backbone,
    pretrain_masked_lm,
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
    _, hard = next(iter(augmented_dataset(images, labels, 2, batch_size=16, mix=None, rand_augment=False,
                                          shuffle=False)))
    np.testing.assert_array_equal(hard.numpy().argmax(axis=1), labels)


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
