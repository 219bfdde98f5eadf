"""Solutions to the exercises of notebook 13 (pretrain, then transfer).

Run: `python notebooks/solutions/13_pretrain_and_transfer.py` (add `MMKERAS_SMOKE=1` for a quick run; the full
run pretrains the tiny BERT and the caption-word CNN once, as the notebook does, then fine-tunes about a dozen
classifiers: 10 to 15 minutes on 2 CPU cores).
"""

from __future__ import annotations

import functools
import pathlib
import tempfile

import keras
import keras_hub
import numpy as np
import tensorflow as tf  # for tf.data and its logger

import mmkeras
from mmkeras import pretrain
from mmkeras.data.scenes import SCENE_VOCABULARY
from mmkeras.encoders.text import learn_vocabulary

tf.get_logger().setLevel("ERROR")
by_mode = mmkeras.config.by_mode
CORPUS, MLM_EPOCHS = by_mode(full=(2500, 8), smoke=(48, 1))
POOL, PRETEXT_EPOCHS = by_mode(full=(3000, 5), smoke=(64, 1))
VAL, TEST = by_mode(full=(200, 1000), smoke=(16, 32))
HEAD_EPOCHS, FT_EPOCHS = by_mode(full=(10, 20), smoke=(1, 1))
BERT_SIZES = by_mode(full=dict(num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=128),
                     smoke=dict(num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32))
FILTERS = by_mode(full=(16, 32, 64), smoke=(4, 8))
BATCH = 16
PRESETS = pathlib.Path(tempfile.mkdtemp(prefix="mmkeras_presets_"))


@functools.cache
def bert_preset() -> str:
    """The notebook's tiny BERT, pretrained by MLM on the captions and saved as a preset folder."""
    mmkeras.seed_everything(0)
    corpus = pretrain.caption_corpus(CORPUS, CORPUS, seed=1)
    masked_lm = pretrain.build_masked_lm(learn_vocabulary(corpus), sequence_length=16, **BERT_SIZES)
    pretrain.pretrain_masked_lm(masked_lm, corpus, epochs=MLM_EPOCHS, batch_size=64, learning_rate=2e-3)
    masked_lm.save_to_preset(str(PRESETS / "bert"))
    return str(PRESETS / "bert")


@functools.cache
def cnn_preset() -> str:
    """The notebook's CNN, pretrained on the caption-word pretext over unlabelled scenes."""
    mmkeras.seed_everything(0)
    pool = mmkeras.load_scene_splits(POOL, 1, 1, seed=1)["train"]
    backbone = pretrain.ConvBackbone(stackwise_num_filters=FILTERS)
    pretrain.pretrain_image_backbone(backbone, pool.features["image"], texts=pool.features["text"],
                                     vocabulary=SCENE_VOCABULARY, epochs=PRETEXT_EPOCHS, batch_size=64)
    backbone.save_to_preset(str(PRESETS / "cnn"))
    return str(PRESETS / "cnn")


def text_task(labelled: int):
    splits = mmkeras.load_splits(labelled, VAL, TEST, seed=0)
    return {k: (s.features["text"].astype(str), 2 * s.labels["color"] + s.labels["direction"])
            for k, s in splits.items()}


def image_task(labelled: int):
    splits = mmkeras.load_splits(labelled, VAL, TEST, seed=0)
    return {k: (s.features["image"], 2 * s.labels["shape"] + s.labels["color"]) for k, s in splits.items()}


def text_scratch_and_fine_tuned(data, unfreeze_layers=None) -> tuple[float, float]:
    keras.utils.set_random_seed(0)
    classifier = pretrain.load_text_classifier(bert_preset(), num_classes=4, sequence_length=16)
    pretrain.fine_tune(classifier, data["train"], head_epochs=HEAD_EPOCHS, fine_tune_epochs=FT_EPOCHS,
                       head_learning_rate=3e-3, fine_tune_learning_rate=1e-3, head_layers=1,
                       unfreeze_layers=unfreeze_layers, batch_size=BATCH)
    tuned = pretrain.accuracy(classifier, *data["test"])
    keras.utils.set_random_seed(0)
    tokenizer = keras_hub.tokenizers.BertTokenizer.from_preset(bert_preset())
    scratch = keras_hub.models.BertTextClassifier(
        keras_hub.models.BertBackbone(vocabulary_size=tokenizer.vocabulary_size(), max_sequence_length=16,
                                      **BERT_SIZES),
        num_classes=4, preprocessor=keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=16))
    pretrain.train_from_scratch(scratch, data["train"], epochs=HEAD_EPOCHS + FT_EPOCHS, batch_size=BATCH)
    return pretrain.accuracy(scratch, *data["test"]), tuned


def image_fine_tuned(data, mix="mixup", rand_augment=True, unfreeze_layers=None) -> float:
    keras.utils.set_random_seed(0)
    train = pretrain.augmented_dataset(*data["train"], num_classes=4, batch_size=BATCH, mix=mix,
                                       rand_augment=rand_augment, seed=0)
    classifier = pretrain.build_image_classifier(keras_hub.models.Backbone.from_preset(cnn_preset()), 4)
    pretrain.fine_tune(classifier, train, head_epochs=HEAD_EPOCHS, fine_tune_epochs=FT_EPOCHS,
                       unfreeze_layers=unfreeze_layers, fine_tune_learning_rate=5e-4, one_hot_classes=4)
    return pretrain.accuracy(classifier, *data["test"])


def exercise_1_fewer_labels():
    """The gap between scratch and fine-tuned shrinks as labels grow (text shown; images behave alike)."""
    for labelled in by_mode(full=(32, 100, 300), smoke=(16,)):
        scratch, tuned = text_scratch_and_fine_tuned(text_task(labelled))
        print(f"exercise 1, {labelled:3d} labelled captions: scratch {scratch:.3f}, fine-tuned {tuned:.3f}")


def exercise_2_unfreeze_less():
    """Unfreezing only the top: the last Transformer layer + pooler (BERT), the last conv stage (CNN)."""
    _, tuned = text_scratch_and_fine_tuned(text_task(by_mode(full=100, smoke=16)), unfreeze_layers=2)
    print(f"exercise 2, BERT with only the top 2 layers unfrozen: {tuned:.3f}")
    top = 4  # the last stage's two (conv, batch norm) pairs
    print(f"exercise 2, CNN with only the top {top} layers unfrozen: "
          f"{image_fine_tuned(image_task(by_mode(full=100, smoke=16)), unfreeze_layers=top):.3f}")


def exercise_3_mean_pooled_frozen_features():
    """A frozen BERT's mean-pooled `sequence_output` + logistic regression, instead of the untrained [CLS]."""
    data = text_task(by_mode(full=100, smoke=16))
    backbone = keras_hub.models.BertBackbone.from_preset(bert_preset())
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(bert_preset(), sequence_length=16)

    def features(texts):
        tokens = preprocessor(tf.constant(texts))
        sequence = backbone(tokens)["sequence_output"]  # (batch, 16, hidden_dim)
        return keras.layers.GlobalAveragePooling1D()(sequence, mask=tokens["padding_mask"]).numpy()

    keras.utils.set_random_seed(0)
    probe = keras.Sequential([keras.Input((backbone.hidden_dim,)), keras.layers.Dense(4)])
    probe.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    probe.fit(features(data["train"][0]), data["train"][1], epochs=by_mode(full=200, smoke=2), verbose=0)
    accuracy = np.mean(probe.predict(features(data["test"][0]), verbose=0).argmax(-1) == data["test"][1])
    print(f"exercise 3, frozen BERT, mean-pooled features + logistic regression: {accuracy:.3f}")


def exercise_4_which_augmentation():
    data = image_task(by_mode(full=100, smoke=16))
    # smoke mode: CutMix alone (exercise 2 already ran MixUp + RandAugment)
    for mix, rand in by_mode(full=(("mixup", True), ("cutmix", False), ("cutmix", True), (None, True)),
                             smoke=(("cutmix", False),)):
        print(f"exercise 4, mix={mix}, RandAugment={rand}: fine-tuned {image_fine_tuned(data, mix, rand):.3f}")


if __name__ == "__main__":
    exercise_1_fewer_labels()
    exercise_2_unfreeze_less()
    exercise_3_mean_pooled_frozen_features()
    exercise_4_which_augmentation()
