"""Solutions to the exercises of notebook 01_text (text feature extractors).

    python notebooks/solutions/01_text.py                    # full size (a few minutes on a laptop CPU)
    MMKERAS_SMOKE=1 python notebooks/solutions/01_text.py    # a few seconds of work
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf  # only for tf.constant (string tensors)
from keras import layers, ops

import mmkeras
from mmkeras.data import CLASS_NAMES, VOCABULARY, attribute_accuracy, caption_reader_accuracy

SMOKE = mmkeras.config.is_smoke()
SIZES = mmkeras.config.by_mode(full=(2000, 500, 1000), smoke=(128, 32, 256))
EPOCHS = mmkeras.config.by_mode(full=20, smoke=2)
TEXT_LENGTH = 12  # tokens per caption, as in the notebook


def early_stopping():
    return [keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)]


@functools.lru_cache(maxsize=1)
def splits():
    return mmkeras.load_splits(*SIZES)


def build_rnn_classifier():
    """The notebook's classifier: caption -> bidirectional GRU -> hidden layer -> 8 logits."""
    encoder = mmkeras.encoders.build_text_encoder("rnn", vocabulary=VOCABULARY)
    return mmkeras.build_fusion_classifier({"text": encoder}, num_classes=8)


@functools.lru_cache(maxsize=1)
def trained_gru():
    """The notebook's GRU classifier, trained with its recipe (early stopping); shared by the exercises."""
    data = splits()
    return mmkeras.training.train_and_evaluate(build_rnn_classifier, data["train"], data["test"], val=data["val"],
                                               epochs=EPOCHS, callbacks=early_stopping())


def exercise_1():
    """New words: "cherry" gets its own id only in an extended vocabulary; the trained model reads it as [UNK]."""
    caption = tf.constant(["a cherry toy rolls leftwards"])
    course = layers.TextVectorization(vocabulary=list(VOCABULARY), output_sequence_length=TEXT_LENGTH)
    extended = layers.TextVectorization(vocabulary=list(VOCABULARY) + ["cherry"], output_sequence_length=TEXT_LENGTH)
    old_ids = ops.convert_to_numpy(course(caption))[0]  # (L,)
    new_ids = ops.convert_to_numpy(extended(caption))[0]  # (L,)
    cherry_old, cherry_new = int(old_ids[1]), int(new_ids[1])  # "cherry" is the second word
    assert cherry_old == 1, f"the course vocabulary should map 'cherry' to [UNK] (1), got {cherry_old}"
    assert cherry_new == extended.vocabulary_size() - 1, "the new word gets the last id"
    assert np.array_equal(np.delete(old_ids, 1), np.delete(new_ids, 1)), "the other words keep their ids"
    lines = [f"'cherry' -> id {cherry_old} ([UNK]) with the course vocabulary, id {cherry_new} with the extended one"]

    # Run the trained model: "cherry" is [UNK], so the caption says "left" but names no color it knows.
    model = trained_gru().model
    probes = ["a cherry toy rolls leftwards", "a red toy rolls leftwards", "a small toy rolls leftwards"]
    logits = model({"text": tf.constant(probes)}, training=False)  # (3, 8) logits
    proba = ops.convert_to_numpy(ops.softmax(logits, axis=-1))  # (3, 8)
    red = np.array([CLASS_NAMES.index(n) for n in CLASS_NAMES if n.startswith("red")])
    left = np.array([CLASS_NAMES.index(n) for n in CLASS_NAMES if n.endswith("left")])
    for text, p in zip(probes, proba):
        top = np.argsort(p)[::-1][:4]
        lines.append(f"  {text!r}: P(red) {p[red].sum():.2f}, P(left) {p[left].sum():.2f}; top classes "
                     + ", ".join(f"{CLASS_NAMES[k]} {p[k]:.2f}" for k in top))
    if not SMOKE:
        assert proba[:, left].sum(1).min() > 0.8, "every probe says 'leftwards': the model should believe it"
        assert proba[1, red].sum() > 0.8, "'red' is a color word the model knows"
        assert 0.2 < proba[0, red].sum() < 0.8, "with [UNK] instead of a color word, the color stays uncertain"
    lines.append("  -> 'cherry' reaches the model as [UNK]. No training caption has an unknown word, so the [UNK] "
                 "embedding row was never trained (it keeps its random start): the model reads the caption much like "
                 "'a small toy ...', sure of 'left' but guessing the color (and, as always, the shape), unlike "
                 "'a red toy ...'. A new word needs a vocabulary entry and fine-tuning on captions that use it.")
    return "\n".join(lines)


RED_WORDS = {"red", "crimson", "scarlet"}
BLUE_WORDS = {"blue", "navy", "azure"}
LEFT_WORDS = {"left", "leftwards", "west"}
RIGHT_WORDS = {"right", "rightwards", "east"}


def read_caption(caption: str, rng: np.random.Generator) -> int:
    """A rule-based caption reader: color and direction from keywords (a guess when missing), shape a guess."""
    words = set(caption.split())
    color = 0 if words & RED_WORDS else 1 if words & BLUE_WORDS else int(rng.integers(2))
    direction = 0 if words & LEFT_WORDS else 1 if words & RIGHT_WORDS else int(rng.integers(2))
    shape = int(rng.integers(2))  # the caption never says
    return 4 * shape + 2 * color + direction


def exercise_2():
    """The ceiling without learning: keyword rules vs the trained GRU on the same test split."""
    test = splits()["test"]
    rng = np.random.default_rng(0)
    rules = np.array([read_caption(c, rng) for c in test.features["text"]])
    true = test.labels["label"]
    rules_accuracy = float(np.mean(rules == true))
    rules_attributes = attribute_accuracy(true, rules)
    gru = trained_gru()
    gru_attributes = attribute_accuracy(true, mmkeras.predict_classes(gru.model, test))
    reader = caption_reader_accuracy(test.meta)
    noise = np.sqrt(reader * (1 - reader) / len(test))  # standard error of an accuracy near the ceiling
    if not SMOKE:
        assert abs(rules_accuracy - reader) < 0.05, f"the rules are a believing caption reader: {rules_accuracy:.3f}"
        assert rules_attributes["color"] > 0.85 and rules_attributes["direction"] > 0.85, rules_attributes
        assert 0.4 < rules_attributes["shape"] < 0.6, f"shape must be a coin flip, got {rules_attributes['shape']:.3f}"
        assert abs(rules_accuracy - gru.report["accuracy"]) < 0.05, "the GRU learned what the rules say"

    def fmt(attributes):
        return ", ".join(f"{k} {v:.3f}" for k, v in attributes.items())

    return (f"rules: accuracy {rules_accuracy:.3f} ({fmt(rules_attributes)}); GRU: accuracy "
            f"{gru.report['accuracy']:.3f} ({fmt(gru_attributes)}); caption_reader_accuracy {reader:.3f}. "
            f"The rules and the GRU agree within the shape coin flips' noise (about {noise:.3f} on "
            f"{len(test)} captions): the GRU learned the keyword rules, nothing more is in the captions.")


def build_bag_of_words_encoder(embedding_dim: int = 32):
    """Caption -> ids -> embeddings -> masked mean: word order is thrown away."""
    text = keras.Input(shape=(), dtype="string", name="text")  # (batch,)
    vectorizer = layers.TextVectorization(vocabulary=list(VOCABULARY), output_sequence_length=TEXT_LENGTH)
    ids = vectorizer(text)  # (batch, L)
    x = layers.Embedding(vectorizer.vocabulary_size(), embedding_dim, mask_zero=True)(ids)  # (batch, L, d)
    features = layers.GlobalAveragePooling1D()(x)  # (batch, d): mean over the real words only
    return keras.Model(text, features, name="bag_of_words_encoder")


def exercise_3():
    """Bag of words vs bidirectional GRU: same recipe; order carries nothing extra in these captions."""
    data = splits()
    bag = mmkeras.training.train_and_evaluate(
        lambda: mmkeras.build_fusion_classifier({"text": build_bag_of_words_encoder()}, num_classes=8),
        data["train"], data["test"], val=data["val"], epochs=EPOCHS, callbacks=early_stopping(),
    )
    gru = trained_gru()
    # The mask really is respected: the features are the mean of the real words' embeddings only.
    encoder = build_bag_of_words_encoder()
    one = ops.convert_to_numpy(encoder(tf.constant(["a red toy moves"]), training=False))
    ids_layer = encoder.layers[1]
    ids = ops.convert_to_numpy(ids_layer(tf.constant(["a red toy moves"])))[0]
    assert ids[-1] == 0, "the caption is padded"
    embeddings = ops.convert_to_numpy(encoder.layers[2].embeddings)
    assert np.allclose(one[0], embeddings[ids[ids > 0]].mean(axis=0), atol=1e-5), "mean over real words only"
    if not SMOKE:
        assert abs(bag.report["accuracy"] - gru.report["accuracy"]) < 0.05, (bag.report, gru.report)
    return (f"bag of words {bag.report['accuracy']:.3f} ({bag.model.count_params()} parameters, "
            f"{len(bag.history['loss'])} epochs), BiGRU {gru.report['accuracy']:.3f} "
            f"({gru.model.count_params()} parameters): word order adds nothing here")


if __name__ == "__main__":
    for number, exercise in enumerate((exercise_1, exercise_2, exercise_3), start=1):
        print(f"exercise {number}: {exercise()}")
