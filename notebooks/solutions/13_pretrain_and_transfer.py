"""Solutions to the exercises of notebook 13 (pretrain, then transfer).

Run: `python notebooks/solutions/13_pretrain_and_transfer.py` (add `MMKERAS_SMOKE=1` for a quick run). As in the
notebook, each seed 0-2 pretrains its own tiny BERT, and the caption-word CNN is pretrained once; then about a
hundred few-label classifiers are trained: about 14 minutes on 2 CPU cores. Every conclusion it prints is checked
by an `assert` on the computed numbers (in full mode; smoke mode only checks that the code runs).

The recipes are the notebook's: the image models get the label-preserving augmentation drawn per image and
BatchNorm statistics re-estimated on the clean training images (`batch_norm_images=`). The BERTs are pretrained
the same way as the notebook's but are not bit-identical to them (the notebook draws masks for its masking demo
before pretraining), so the text numbers differ from the notebook's by the luck of pretraining.
"""

from __future__ import annotations

import functools
import pathlib
import tempfile

import keras
import keras_hub
import matplotlib

matplotlib.use("Agg")  # the plot is written to a file
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402  (tf.data and its logger)

import mmkeras  # noqa: E402
from mmkeras import pretrain  # noqa: E402
from mmkeras.data.scenes import SCENE_VOCABULARY  # noqa: E402
from mmkeras.encoders.text import learn_vocabulary  # noqa: E402
from mmkeras.evidence import TIED, WORSE, rank_with_spread, seed_spread  # noqa: E402

tf.get_logger().setLevel("ERROR")
SMOKE = mmkeras.config.is_smoke()
by_mode = mmkeras.config.by_mode
CORPUS, MLM_EPOCHS = by_mode(full=(2500, 8), smoke=(48, 1))
POOL, PRETEXT_EPOCHS = by_mode(full=(3000, 5), smoke=(64, 1))
VAL, TEST = by_mode(full=(200, 1000), smoke=(16, 32))
LABELLED = by_mode(full=100, smoke=16)
LABEL_COUNTS = by_mode(full=(32, 100, 300), smoke=(16,))
SEEDS = by_mode(full=(0, 1, 2), smoke=(0,))
HEAD_EPOCHS, FT_EPOCHS = by_mode(full=(10, 20), smoke=(1, 1))
PROBE_EPOCHS = by_mode(full=200, smoke=2)
BERT_SIZES = by_mode(full=dict(num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=128),
                     smoke=dict(num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32))
FILTERS = by_mode(full=(16, 32, 64), smoke=(4, 8))
BATCH = 16
OUT = pathlib.Path(tempfile.mkdtemp(prefix="mmkeras_13_"))


@functools.cache
def bert_preset(seed: int = 0) -> str:
    """A tiny BERT pretrained by MLM on the captions with `seed`, as in the notebook, saved as a preset folder."""
    mmkeras.seed_everything(seed)
    corpus = pretrain.caption_corpus(CORPUS, CORPUS, seed=1)
    masked_lm = pretrain.build_masked_lm(learn_vocabulary(corpus), sequence_length=16, **BERT_SIZES)
    pretrain.pretrain_masked_lm(masked_lm, corpus, epochs=MLM_EPOCHS, batch_size=64, learning_rate=2e-3, seed=seed)
    masked_lm.save_to_preset(str(OUT / f"bert_seed{seed}"))
    return str(OUT / f"bert_seed{seed}")


@functools.cache
def cnn_preset() -> str:
    """The notebook's CNN, pretrained on the caption-word pretext over unlabelled scenes."""
    mmkeras.seed_everything(0)
    pool = mmkeras.load_scene_splits(POOL, 1, 1, seed=1)["train"]
    backbone = pretrain.ConvBackbone(stackwise_num_filters=FILTERS)
    pretrain.pretrain_image_backbone(backbone, pool.features["image"], texts=pool.features["text"],
                                     vocabulary=SCENE_VOCABULARY, epochs=PRETEXT_EPOCHS, batch_size=64)
    backbone.save_to_preset(str(OUT / "cnn"))
    return str(OUT / "cnn")


@functools.cache
def splits(labelled: int) -> dict:
    return mmkeras.load_splits(labelled, VAL, TEST, seed=0)


def text_task(labelled: int) -> dict:
    return {k: (s.features["text"].astype(str), 2 * s.labels["color"] + s.labels["direction"])
            for k, s in splits(labelled).items()}


def image_task(labelled: int) -> dict:
    return {k: (s.features["image"], 2 * s.labels["shape"] + s.labels["color"]) for k, s in splits(labelled).items()}


# --- one run each; cached, so that exercises sharing a run (same labels, seed and recipe) train it once ---------


@functools.cache
def text_fine_tuned(labelled: int, seed: int, unfreeze_layers=None) -> float:
    data = text_task(labelled)
    keras.utils.set_random_seed(seed)
    classifier = pretrain.load_text_classifier(bert_preset(seed), num_classes=4, sequence_length=16)
    pretrain.fine_tune(classifier, data["train"], head_epochs=HEAD_EPOCHS, fine_tune_epochs=FT_EPOCHS,
                       head_learning_rate=3e-3, fine_tune_learning_rate=1e-3, head_layers=1,
                       unfreeze_layers=unfreeze_layers, batch_size=BATCH)
    return pretrain.accuracy(classifier, *data["test"])


@functools.cache
def text_scratch(labelled: int, seed: int) -> float:
    data = text_task(labelled)
    keras.utils.set_random_seed(seed)
    tokenizer = keras_hub.tokenizers.BertTokenizer.from_preset(bert_preset(0))  # the vocabulary only
    scratch = keras_hub.models.BertTextClassifier(
        keras_hub.models.BertBackbone(vocabulary_size=tokenizer.vocabulary_size(), max_sequence_length=16,
                                      **BERT_SIZES),
        num_classes=4, preprocessor=keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=16))
    pretrain.train_from_scratch(scratch, data["train"], epochs=HEAD_EPOCHS + FT_EPOCHS, batch_size=BATCH)
    return pretrain.accuracy(scratch, *data["test"])


def _train_images(data, seed, augment=True, mix="mixup", rand_augment=False):
    """The training input: `(x, y)` arrays, or an augmented `tf.data` pipeline of one-hot batches."""
    if not augment and mix is None and not rand_augment:
        return data["train"]
    train = pretrain.augmented_dataset(*data["train"], num_classes=4, batch_size=BATCH, augment=augment, mix=mix,
                                       seed=seed)
    if rand_augment:  # exercise 5: keras's RandAugment on whole batches, as notebook 13 used to apply it
        layer = keras.layers.RandAugment(value_range=(0, 1), num_ops=2, factor=0.3, seed=seed)
        plain = pretrain.augmented_dataset(*data["train"], num_classes=4, batch_size=BATCH, augment=False, mix=None,
                                           seed=seed)
        mixer = keras.layers.MixUp(alpha=0.2, seed=seed)

        def recolour(x, y):
            x = tf.clip_by_value(layer(x, training=True), 0.0, 1.0)
            mixed = mixer({"images": x, "labels": y}, training=True)
            return mixed["images"], mixed["labels"]

        train = plain.map(recolour)
    return train


@functools.cache
def image_fine_tuned(labelled: int, seed: int, unfreeze_layers=None) -> float:
    data = image_task(labelled)
    keras.utils.set_random_seed(seed)
    classifier = pretrain.build_image_classifier(keras_hub.models.Backbone.from_preset(cnn_preset()), 4)
    pretrain.fine_tune(classifier, _train_images(data, seed), head_epochs=HEAD_EPOCHS, fine_tune_epochs=FT_EPOCHS,
                       fine_tune_learning_rate=5e-4, unfreeze_layers=unfreeze_layers, one_hot_classes=4,
                       batch_norm_images=data["train"][0])
    return pretrain.accuracy(classifier, *data["test"])


@functools.cache
def image_scratch(labelled: int, seed: int, augment=True, mix="mixup", rand_augment=False) -> float:
    data = image_task(labelled)
    train = _train_images(data, seed, augment, mix, rand_augment)
    keras.utils.set_random_seed(seed)
    scratch = pretrain.build_image_classifier(pretrain.ConvBackbone(stackwise_num_filters=FILTERS), 4)
    pretrain.train_from_scratch(scratch, train, epochs=HEAD_EPOCHS + FT_EPOCHS, batch_size=BATCH,
                                one_hot_classes=None if isinstance(train, tuple) else 4,
                                batch_norm_images=data["train"][0])
    return pretrain.accuracy(scratch, *data["test"])


def over_seeds(run, *args, **kwargs) -> list[float]:
    return [run(*args, seed=seed, **kwargs) for seed in SEEDS]


def verdict(results: dict) -> dict:
    """`{name: verdict}` against the best mean (the notebook's rule: "clearly worse" only if no seeds overlap)."""
    rows = rank_with_spread(results, min_runs=len(SEEDS))
    for row in rows:
        print(f"    {row.name:40s} {row.spread.format()}  {row.verdict}")
    return {row.name: row.verdict for row in rows}


# --- the exercises --------------------------------------------------------------------------------------------


def exercise_1_fewer_labels():
    """Accuracy against the number of labels, scratch vs fine-tuned, text and images, seeds 0-2; a plot."""
    table = {}
    for labelled in LABEL_COUNTS:
        table[("text", labelled)] = {"scratch": over_seeds(text_scratch, labelled),
                                     "fine-tuned": over_seeds(text_fine_tuned, labelled)}
        table[("image", labelled)] = {"scratch": over_seeds(image_scratch, labelled),
                                      "fine-tuned": over_seeds(image_fine_tuned, labelled)}
    verdicts = {}
    for (task, labelled), results in table.items():
        print(f"exercise 1, {task}, {labelled} labels:")
        verdicts[(task, labelled)] = verdict(results)

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    for a, task in zip(ax, ("text", "image")):
        for kind in ("scratch", "fine-tuned"):
            spreads = [seed_spread(table[(task, n)][kind]) for n in LABEL_COUNTS]
            a.errorbar(LABEL_COUNTS, [s.mean for s in spreads], capsize=4, marker="o", label=kind,
                       yerr=[[s.mean - s.min for s in spreads], [s.max - s.mean for s in spreads]])
        a.set(title=f"{task}: test accuracy (mean, min–max over seeds)", xlabel="labelled examples", xscale="log",
              ylim=(0, 1))
        a.legend()
    fig.tight_layout()
    fig.savefig(OUT / "exercise_1.png")
    print(f"exercise 1: plot written to {OUT / 'exercise_1.png'}")

    gaps = {task: [np.mean(table[(task, n)]["fine-tuned"]) - np.mean(table[(task, n)]["scratch"])
                   for n in LABEL_COUNTS] for task in ("text", "image")}
    for task, values in gaps.items():
        print(f"exercise 1, {task}: fine-tuned minus scratch (means), by labels {LABEL_COUNTS}: "
              + ", ".join(f"{g:+.3f}" for g in values))
    if not SMOKE:
        # Text: with 32 labels the MLM-pretrained BERT is clearly worse than scratch (MLM merged the colour
        # words, section 4.1), and from 100 labels on the two are tied: pretraining helped at no label count.
        assert verdicts[("text", 32)]["fine-tuned"] == WORSE, verdicts[("text", 32)]
        assert all(TIED in verdicts[("text", n)].values() for n in LABEL_COUNTS[1:]), verdicts
        # Images: tied at every label count, 32 included.
        assert all(TIED in verdicts[("image", n)].values() for n in LABEL_COUNTS), verdicts
        print("exercise 1: pretraining is clearly better nowhere; with 32 labels, the text one is clearly worse")
    return table, verdicts


def exercise_2_unfreeze_less():
    """Only the top unfrozen (BERT: the last Transformer layer + pooler; CNN: its last stage) against all."""
    text = {"all layers": over_seeds(text_fine_tuned, LABELLED),
            "top 2 (last Transformer layer, pooler)": over_seeds(text_fine_tuned, LABELLED, unfreeze_layers=2)}
    image = {"all layers": over_seeds(image_fine_tuned, LABELLED),
             "top 4 (last stage)": over_seeds(image_fine_tuned, LABELLED, unfreeze_layers=4)}
    backbone = keras_hub.models.Backbone.from_preset(cnn_preset())
    assert pretrain.unfreeze_top(backbone, 4) == ["stack2_conv0", "stack2_bn0", "stack2_conv1", "stack2_bn1"] or SMOKE
    print("exercise 2, BERT:")
    text_verdicts = verdict(text)
    print("exercise 2, CNN:")
    image_verdicts = verdict(image)
    if not SMOKE:  # with 100 labels, unfreezing only the top is clearly worse for both
        assert text_verdicts["top 2 (last Transformer layer, pooler)"] == WORSE, text_verdicts
        assert image_verdicts["top 4 (last stage)"] == WORSE, image_verdicts
        print("exercise 2: unfreezing only the top is clearly worse than unfreezing everything, for both")
    return text_verdicts, image_verdicts


def exercise_3_where_does_the_colour_go():
    """Logistic regression on standardized, mean-pooled features of each level of the frozen BERT (seed 0's)."""
    data = text_task(LABELLED)
    backbone = keras_hub.models.BertBackbone.from_preset(bert_preset(0))
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(bert_preset(0), sequence_length=16)
    levels = {"token embeddings": backbone.get_layer("token_embedding")}
    levels |= {f"transformer_layer_{i}": backbone.get_layer(f"transformer_layer_{i}")
               for i in range(backbone.num_layers)}

    def features(texts, level):
        tokens = preprocessor(tf.constant(texts))
        if level == "token embeddings":
            vectors = levels[level](tokens["token_ids"])  # (batch, 16, hidden_dim)
        else:
            vectors = keras.Model(backbone.inputs, levels[level].output)(tokens)  # (batch, 16, hidden_dim)
        return keras.layers.GlobalAveragePooling1D()(vectors, mask=tokens["padding_mask"]).numpy()

    accuracies = {}
    for level in levels:
        train_x, test_x = features(data["train"][0], level), features(data["test"][0], level)
        mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
        keras.utils.set_random_seed(0)
        probe = keras.Sequential([keras.Input((train_x.shape[1],)), keras.layers.Dense(4)])
        probe.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        probe.fit((train_x - mean) / std, data["train"][1], epochs=PROBE_EPOCHS, batch_size=32, verbose=0)
        predicted = np.argmax(probe.predict((test_x - mean) / std, verbose=0), axis=-1)
        accuracies[level] = float(np.mean(predicted == data["test"][1]))
        print(f"exercise 3, frozen BERT, {level:18s}: probe test accuracy {accuracies[level]:.3f}")
    if not SMOKE:
        # The words' identity is readable before any attention and fades with every MLM-trained layer
        top = f"transformer_layer_{backbone.num_layers - 1}"
        assert accuracies["token embeddings"] > accuracies[top] + 0.1, accuracies
        order = list(accuracies.values())
        assert order == sorted(order, reverse=True), accuracies
        print("exercise 3: the label is readable from the token embeddings and fades with every MLM-trained layer")
    return accuracies


def exercise_4_which_augmentation():
    """Scratch CNN, precise BatchNorm, seeds 0-2: each augmentation alone and two combinations."""
    variants = {"none": dict(augment=False, mix=None), "label-preserving + MixUp": dict(augment=True, mix="mixup"),
                "label-preserving": dict(augment=True, mix=None), "MixUp": dict(augment=False, mix="mixup"),
                "CutMix": dict(augment=False, mix="cutmix"), "label-preserving + CutMix": dict(augment=True,
                                                                                              mix="cutmix")}
    results = {name: over_seeds(image_scratch, LABELLED, **options) for name, options in variants.items()}
    print("exercise 4, scratch CNN by augmentation:")
    verdicts = verdict(results)
    if not SMOKE:
        # No augmentation is clearly better than none; CutMix alone is clearly worse than the best
        assert all(max(results["none"]) >= min(values) for values in results.values()), results
        assert verdicts["CutMix"] == WORSE, verdicts
        print("exercise 4: no augmentation beats none beyond the spread; CutMix alone is clearly worse")
    return verdicts


def exercise_5_label_changing_augmentation():
    """keras's RandAugment (per batch, colour operations included) against the label-preserving policy."""
    results = {"label-preserving + MixUp": over_seeds(image_scratch, LABELLED),
               "RandAugment per batch + MixUp": over_seeds(image_scratch, LABELLED, augment=False,
                                                           rand_augment=True)}
    print("exercise 5, scratch CNN:")
    verdicts = verdict(results)
    if not SMOKE:
        assert verdicts["RandAugment per batch + MixUp"] == WORSE, verdicts
        print("exercise 5: the label-changing RandAugment is clearly worse than the label-preserving policy")
    return verdicts


if __name__ == "__main__":
    exercise_1_fewer_labels()
    exercise_2_unfreeze_less()
    exercise_3_where_does_the_colour_go()
    exercise_4_which_augmentation()
    exercise_5_label_changing_augmentation()
