"""Solutions to the exercises of notebook 01_text (text feature extractors).

    python notebooks/solutions/01_text.py                    # full size
    MMKERAS_SMOKE=1 python notebooks/solutions/01_text.py    # a few seconds of work
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf  # only for tf.constant (string tensors)
from keras import layers, ops

import mmkeras
from mmkeras.data import VOCABULARY
from mmkeras.data.synthetic import TEXT_LENGTH

SMOKE = mmkeras.config.is_smoke()
SIZES = (128, 32, 256) if SMOKE else (2000, 500, 1000)
EPOCHS = 3 if SMOKE else 8


def exercise_1():
    """New words: a vocabulary with "cherry" gives it its own id; the course vocabulary maps it to [UNK] (1)."""
    caption = tf.constant(["a cherry toy rolls leftwards"])
    course = layers.TextVectorization(vocabulary=list(VOCABULARY), output_sequence_length=TEXT_LENGTH)
    extended = layers.TextVectorization(vocabulary=list(VOCABULARY) + ["cherry"], output_sequence_length=TEXT_LENGTH)
    old_ids = ops.convert_to_numpy(course(caption))[0]  # (L,)
    new_ids = ops.convert_to_numpy(extended(caption))[0]  # (L,)
    cherry_old, cherry_new = int(old_ids[1]), int(new_ids[1])  # "cherry" is the second word
    assert cherry_old == 1, f"the course vocabulary should map 'cherry' to [UNK] (1), got {cherry_old}"
    assert cherry_new == extended.vocabulary_size() - 1, "the new word gets the last id"
    assert np.array_equal(np.delete(old_ids, 1), np.delete(new_ids, 1)), "the other words keep their ids"
    # A model trained with the course vocabulary sees [UNK] where "cherry" stands: a caption without a color
    # word, so it can only guess the color. Its new embedding row would have to be learned (fine-tuning).
    return f"'cherry' -> {cherry_old} ([UNK]) with the course vocabulary, -> {cherry_new} with the extended one"


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
    """The ceiling without learning: keyword rules reach about 50 % on 8 classes, high on (color, direction)."""
    test = mmkeras.make_synthetic(1000, seed=123)  # no training here: a full-size split is cheap
    rng = np.random.default_rng(0)
    predicted = np.array([read_caption(c, rng) for c in test.features["text"]])
    true = test.labels["label"]
    accuracy = float(np.mean(predicted == true))
    seen = float(np.mean(predicted % 4 == true % 4))  # (color, direction)
    shape = float(np.mean(predicted // 4 == true // 4))
    assert 0.35 < accuracy < 0.55, f"the rules should land near the ~45 % ceiling, got {accuracy:.3f}"
    assert seen > 0.8, f"color and direction are in the captions, got {seen:.3f}"
    assert 0.4 < shape < 0.6, f"shape must be a coin flip, got {shape:.3f}"
    return f"rules: accuracy {accuracy:.3f}, (color, direction) {seen:.3f}, shape {shape:.3f}"


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
    splits = mmkeras.load_splits(*SIZES)
    results = {}
    for name, encoder in (("bag of words", build_bag_of_words_encoder()),
                          ("BiGRU", mmkeras.encoders.build_text_encoder("rnn"))):
        mmkeras.seed_everything(0)
        model = mmkeras.build_fusion_classifier({"text": encoder})
        history = mmkeras.fit_classifier(model, splits["train"], splits["val"], epochs=EPOCHS).history
        assert history["loss"][-1] < history["loss"][0], f"{name}: the training loss should go down"
        results[name] = mmkeras.evaluate_classifier(model, splits["test"])["accuracy"]
    # The mask really is respected: padding does not change the bag-of-words features.
    encoder = build_bag_of_words_encoder()
    one = ops.convert_to_numpy(encoder(tf.constant(["a red toy moves"])))
    ids_layer = encoder.layers[1]
    assert int(ops.convert_to_numpy(ids_layer(tf.constant(["a red toy moves"])))[0, -1]) == 0, "padded"
    embeddings = ops.convert_to_numpy(encoder.layers[2].embeddings)
    ids = ops.convert_to_numpy(ids_layer(tf.constant(["a red toy moves"])))[0]
    assert np.allclose(one[0], embeddings[ids[ids > 0]].mean(axis=0), atol=1e-5), "mean over real words only"
    if not SMOKE:
        assert abs(results["bag of words"] - results["BiGRU"]) < 0.1, results
    return ", ".join(f"{k} {v:.3f}" for k, v in results.items())


if __name__ == "__main__":
    for number, exercise in enumerate((exercise_1, exercise_2, exercise_3), start=1):
        print(f"exercise {number}: {exercise()}")
