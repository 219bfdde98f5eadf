"""Image-text matching and captioning: negatives, BLEU and token accuracy by hand, greedy decoding, the models."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from mmkeras import testing
from mmkeras.captioning import (
    CaptionModel,
    CaptionTokenizer,
    MaskedTokenAccuracy,
    bleu_statistics,
    caption_report,
    corpus_bleu,
    greedy_decode,
    parse_caption,
    token_accuracy,
)
from mmkeras.data.scenes import SCENE_ATTRIBUTES, describe, make_scenes
from mmkeras.matching import (
    ImageTextMatcher,
    build_image_token_encoder,
    make_matching_pairs,
    match_logits,
    matching_report,
    one_attribute_negatives,
    random_negatives,
    word_attention,
)

TINY_MATCHER = {"filters": (4, 8), "embedding_dim": 8, "width": 8, "hidden_dim": 8}
TINY_CAPTIONER = {"filters": (4, 8), "hidden_dim": 8, "intermediate_dim": 16}
CAPTION = "a small red cross at the top left"


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(6, seed=3)


def _matcher_inputs(scenes):
    return scenes.inputs()  # tensors only: Keras refuses a dict mixing NumPy arrays and tf.string tensors


def _caption_inputs(model, scenes):
    return model.teacher_forcing_data(scenes)


# === BLEU, by hand ===

def test_bleu_is_one_for_perfect_captions():
    captions = [CAPTION, "a large blue circle in the center"]
    assert corpus_bleu(captions, captions) == pytest.approx(1.0)


def test_bleu_brevity_penalty_by_hand():
    # Every n-gram of the 6-word hypothesis is in the 8-word reference: p_n = 1, BP = exp(1 - 8/6).
    stats = bleu_statistics([CAPTION], ["a small red cross at the"])
    assert stats["precisions"] == [1.0, 1.0, 1.0, 1.0]
    assert (stats["hypothesis_length"], stats["reference_length"]) == (6, 8)
    assert stats["brevity_penalty"] == pytest.approx(math.exp(1 - 8 / 6))
    assert stats["bleu"] == pytest.approx(math.exp(-1 / 3))


def test_bleu_is_zero_without_overlap_and_without_four_gram_matches():
    assert corpus_bleu(["a red circle at the top"], ["green square on left"]) == 0.0
    # 3 of 4 orders match partly, but no 4-gram does: no smoothing, so BLEU-4 is 0 ...
    assert corpus_bleu(["a red square at the top"], ["a red circle at the top"]) == 0.0
    # ... while BLEU-3 is (5/6 * 3/5 * 1/4) ** (1/3) = 0.5.
    stats = bleu_statistics(["a red square at the top"], ["a red circle at the top"], max_order=3)
    assert stats["precisions"] == pytest.approx([5 / 6, 3 / 5, 1 / 4])
    assert stats["bleu"] == pytest.approx(0.5)


def test_bleu_clips_counts_and_sums_over_the_corpus():
    # "the" 4 times against a reference with one "the": clipped to 1 of 4; c = 4 > r = 2, so BP = 1.
    assert corpus_bleu(["the cat"], ["the the the the"], max_order=1) == pytest.approx(0.25)
    # Corpus counts are pooled: (2 + 0) matched unigrams of (2 + 2) -> 0.5, not the mean of sentence scores.
    stats = bleu_statistics(["red circle", "blue square"], ["red circle", "green cross"], max_order=1)
    assert stats["precisions"] == [0.5]
    # Several references: the best count is used, r is the closest length.
    stats = bleu_statistics([["a red circle", "red circle at the top"]], ["red circle at the"], max_order=1)
    assert stats["precisions"] == [1.0] and stats["reference_length"] == 3


def test_bleu_bad_arguments():
    with pytest.raises(ValueError, match="one reference"):
        corpus_bleu(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="max_order"):
        corpus_bleu(["a"], ["a"], max_order=0)


# === token accuracy and the masked loss ===

def test_token_accuracy_ignores_padding():
    targets = np.array([[5, 6, 2, 0, 0], [7, 2, 0, 0, 0]])
    predicted = np.array([[5, 9, 2, 2, 2], [7, 2, 5, 5, 5]])  # 4 of the 5 real tokens right; padding all wrong
    assert token_accuracy(targets, predicted) == pytest.approx(4 / 5)
    logits = np.eye(10)[predicted]  # (batch, T, vocabulary)
    assert token_accuracy(targets, logits) == pytest.approx(4 / 5)
    metric = MaskedTokenAccuracy()
    metric.update_state(targets, logits)
    assert float(metric.result()) == pytest.approx(4 / 5)
    with pytest.raises(ValueError, match="only padding"):
        token_accuracy([[0, 0]], [[1, 1]])
    with pytest.raises(ValueError, match="shaped like"):
        token_accuracy(targets, predicted[:, :3])


def test_the_caption_loss_is_the_mean_over_real_tokens():
    model = CaptionModel(**TINY_CAPTIONER)
    model.compile()
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5)).astype("float32")
    targets = np.array([[3, 2, 0], [4, 0, 0]])
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    by_hand = -(log_p[0, 0, 3] + log_p[0, 1, 2] + log_p[1, 0, 4]) / 3
    assert float(model.loss(targets, logits)) == pytest.approx(by_hand, rel=1e-5)


# === negatives ===

def test_hard_negatives_differ_in_exactly_one_attribute():
    scenes = make_scenes(300, seed=1)
    captions, labels, changed = one_attribute_negatives(scenes, rng=5)
    differ = np.stack([labels[a] != scenes.labels[a] for a in SCENE_ATTRIBUTES], axis=1)  # (n, 4)
    assert (differ.sum(axis=1) == 1).all()
    assert (differ.argmax(axis=1) == changed).all()
    assert (captions != scenes.features["text"]).all()
    assert set(changed.tolist()) == {0, 1, 2, 3}  # every attribute gets changed somewhere
    for i in range(5):
        assert captions[i] == describe(*(int(labels[a][i]) for a in SCENE_ATTRIBUTES))
    _, labels, changed = one_attribute_negatives(scenes, rng=5, attributes=["size"])
    assert (changed == 2).all() and (labels["size"] != scenes.labels["size"]).all()
    with pytest.raises(ValueError, match="attributes"):
        one_attribute_negatives(scenes, attributes=["weight"])


def test_random_negatives_never_equal_the_positive():
    scenes = make_scenes(2000, seed=2)
    captions, labels, differ = random_negatives(scenes, rng=0)
    assert (captions != scenes.features["text"]).all()
    assert differ.min() >= 1 and differ.mean() > 3  # usually several attributes at once


def test_matching_pairs_are_balanced_and_labelled(scenes):
    pairs = make_matching_pairs(scenes, hard_negatives=1, random_negatives_per_image=1, seed=0)
    assert len(pairs) == 4 * len(scenes)
    match = pairs.labels["match"]
    assert match.mean() == 0.5
    truth = scenes.features["text"][pairs.meta["scene"]]
    assert ((pairs.features["text"] == truth) == (match == 1)).all()
    np.testing.assert_array_equal(pairs.features["image"], scenes.features["image"][pairs.meta["scene"]])
    assert set(pairs.meta["kind"].tolist()) == {"positive", "hard", "random"}
    assert (pairs.meta["changed"][pairs.meta["kind"] == "hard"] >= 0).all()
    with pytest.raises(ValueError, match="at least one negative"):
        make_matching_pairs(scenes, 0, 0)
    with pytest.raises(ValueError, match="hard_negatives"):
        make_matching_pairs(scenes, -1, 1)
    with pytest.raises(ValueError, match="MultimodalData"):
        make_matching_pairs(scenes.features, 1, 1)


# === tokenizer, parsing, greedy decoding ===

def test_tokenizer_round_trip_and_errors():
    tokenizer = CaptionTokenizer()
    inputs, targets = tokenizer.teacher_forcing([CAPTION, "a large blue circle in the center"])
    assert inputs.shape == targets.shape == (2, 9)
    assert inputs[0, 0] == 1 and targets[0, 7] != 2 and targets[0, 8] == 2  # 8 words, then [end]
    assert targets[1, 7] == 2 and targets[1, 8] == 0  # 7 words, [end], padding
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])  # the target is the input shifted by one
    assert tokenizer.decode(targets) == [CAPTION, "a large blue circle in the center"]
    assert CaptionTokenizer.from_config(tokenizer.get_config()).vocabulary == tokenizer.vocabulary
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.encode(["a small pink cross"])
    with pytest.raises(ValueError, match="at most"):
        tokenizer.encode([CAPTION + " left"])
    with pytest.raises(ValueError, match="special tokens"):
        CaptionTokenizer(["a", "[end]"])


def test_parse_caption_and_report():
    assert parse_caption(CAPTION) == {"shape": 3, "color": 0, "size": 0, "position": 0}
    assert parse_caption("a large blue circle on the left")["position"] == 3
    assert parse_caption("a large blue circle at the top")["position"] == 1
    assert parse_caption("a blue")["shape"] == -1
    report = caption_report([CAPTION, CAPTION], [CAPTION, "a small red circle at the top left"])
    assert report["exact_match"] == 0.5 and report["shape"] == 0.5 and report["color"] == 1.0
    assert report["all_attributes"] == 0.5


def _scripted(sequences, vocabulary=6):
    """A fake causal decoder that writes the given token sequences and checks it is fed its own words."""
    sequences = np.asarray(sequences)

    def next_token_logits(ids):
        batch, length = ids.shape
        logits = np.zeros((batch, length, vocabulary))
        for t in range(length):
            logits[np.arange(batch), t, sequences[:, min(t, sequences.shape[1] - 1)]] = 1.0
        return logits

    return next_token_logits


def test_greedy_decoding_stops_at_end_and_respects_max_length():
    fake = _scripted([[3, 4, 2, 5, 5], [3, 3, 3, 3, 3]])
    ids = greedy_decode(fake, batch_size=2, sequence_length=5)
    assert ids.tolist() == [[3, 4, 2, 0, 0], [3, 3, 3, 3, 3]]  # stops after [end]; the other runs to the end
    assert greedy_decode(fake, batch_size=2, sequence_length=5, max_length=2).tolist() == [[3, 4], [3, 3]]
    # Padding and [start] are never chosen, even when they have the largest logit.
    assert greedy_decode(_scripted([[0, 1, 2]]), 1, 3).tolist()[0][0] not in (0, 1)
    with pytest.raises(ValueError, match="max_length"):
        greedy_decode(fake, 2, sequence_length=5, max_length=6)


def test_greedy_decoding_feeds_back_its_own_words():
    seen = []

    def decoder(ids):
        seen.append(ids.copy())
        return np.eye(5)[np.minimum(ids + 1, 4)]  # next word = previous id + 1, capped at 4

    ids = greedy_decode(decoder, 1, sequence_length=4)
    # [start]=1 -> 2 = [end]: the caption is empty and decoding stops after one step.
    assert ids.tolist() == [[2, 0, 0, 0]] and len(seen) == 1


# === the matcher ===

def test_image_token_encoder():
    encoder = build_image_token_encoder(filters=(4, 8, 16))
    assert encoder.output_shape == (None, 16, 16)
    assert build_image_token_encoder(filters=(4, 8), token_dim=6).output_shape == (None, 64, 6)
    with pytest.raises(ValueError, match="input_shape"):
        build_image_token_encoder(input_shape=(4, 4, 3), filters=(4, 8, 16))


def test_matcher_contract(scenes, tmp_path):
    model = ImageTextMatcher(**TINY_MATCHER)
    raw = _matcher_inputs(scenes)
    numbers = testing.model_inputs(model, raw)  # captions -> token ids (batch, 8), beside the model
    assert numbers["text"].dtype == np.int32 and numbers["text"].shape == (6, 8)
    testing.check_shapes(model, numbers, (6, 1))
    testing.check_config_round_trip(model)
    loaded = testing.check_save_load(model, raw, tmp_path)
    assert loaded.preprocessor is not None
    testing.check_gradients(model, numbers)
    np.testing.assert_allclose(model.predict(raw, verbose=0), keras.ops.convert_to_numpy(model(numbers)), atol=1e-5)


def test_the_split_matcher_computes_what_the_tokenizer_inside_computes(scenes):
    keras.utils.set_random_seed(0)
    split, inside = ImageTextMatcher(**TINY_MATCHER), ImageTextMatcher(**TINY_MATCHER, preprocessor=None)
    assert inside.preprocessor is None and inside.input["text"].dtype == "string"
    inside.set_weights(split.get_weights())
    raw = _matcher_inputs(scenes)
    np.testing.assert_allclose(split.predict(raw, verbose=0), inside.predict(raw, verbose=0), atol=1e-6)
    images, captions = scenes.features["image"][:2], scenes.features["text"][:2]
    np.testing.assert_allclose(word_attention(split, images, captions), word_attention(inside, images, captions),
                               atol=1e-6)
    testing.check_config_round_trip(inside)


def test_matcher_training_lowers_the_loss_and_is_reproducible(scenes):
    pairs = make_matching_pairs(scenes, 1, 1, seed=0)

    def run():
        keras.utils.set_random_seed(0)
        model = ImageTextMatcher(**TINY_MATCHER)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)  # no tracing: faster here
        x = pairs.inputs()
        y = pairs.labels["match"].astype("float32")
        before = model.evaluate(x, y, verbose=0)[0]
        for _ in range(8):
            model.train_on_batch(x, y)
        return before, model.evaluate(x, y, verbose=0)[0], match_logits(model, pairs)

    before, after, logits = run()
    assert after < before
    assert logits.shape == (len(pairs),)
    _, _, again = run()
    np.testing.assert_allclose(logits, again, rtol=1e-5, atol=1e-6)


def test_matcher_report_and_attention(scenes):
    model = ImageTextMatcher(**TINY_MATCHER)
    pairs = make_matching_pairs(scenes, 1, 0, seed=0)
    report = matching_report(model, pairs)
    correct = (match_logits(model, pairs) > 0) == (pairs.labels["match"] == 1)
    assert report["accuracy"] == pytest.approx(correct.mean())
    assert report["positives"] == pytest.approx(correct[pairs.labels["match"] == 1].mean())
    attention = word_attention(model, scenes.features["image"][:2], scenes.features["text"][:2])
    assert attention.shape == (2, 8, 8, 8)  # (batch, words, grid rows, grid columns) for filters (4, 8)
    words = [len(str(t).split()) for t in scenes.features["text"][:2]]
    for i, n in enumerate(words):
        np.testing.assert_allclose(attention[i, :n].sum(axis=(1, 2)), 1.0, atol=1e-5)  # a softmax per word
        assert not attention[i, n:].any()  # padding words attend to nothing
    with pytest.raises(ValueError, match="make_matching_pairs"):
        matching_report(model, scenes)


def test_matcher_bad_arguments():
    with pytest.raises(ValueError, match="width"):
        ImageTextMatcher(width=0)
    with pytest.raises(ValueError, match="dropout"):
        ImageTextMatcher(dropout=1.5)
    with pytest.raises(ValueError, match="filters"):
        ImageTextMatcher(filters=())
    with pytest.raises(ValueError, match="preprocessor"):
        ImageTextMatcher(preprocessor="inside")


# === the caption model ===

def test_caption_model_contract(scenes, tmp_path):
    model = CaptionModel(**TINY_CAPTIONER)
    inputs, _ = _caption_inputs(model, scenes)
    testing.check_shapes(model, inputs, (6, 9, model.tokenizer.vocabulary_size))
    testing.check_config_round_trip(model)
    loaded = testing.check_save_load(model, inputs, tmp_path)
    images = scenes.features["image"]
    np.testing.assert_array_equal(loaded.generate_ids(images), model.generate_ids(images))
    assert loaded.generate(images) == model.generate(images)
    testing.check_gradients(model, inputs)


def test_caption_model_generates_within_the_limits(scenes):
    model = CaptionModel(**TINY_CAPTIONER)
    ids = model.generate_ids(scenes.features["image"], max_length=4)
    assert ids.shape == (6, 4)
    one = model.generate(scenes.features["image"][:1])
    assert len(one) == 1 and len(one[0].split()) <= 8
    for row in model.generate_ids(scenes.features["image"]):
        ends = np.flatnonzero(row == 2)
        if ends.size:
            assert not row[ends[0] + 1:].any()  # padding after [end]
    with pytest.raises(ValueError, match="max_length"):
        model.generate_ids(scenes.features["image"], max_length=10)
    with pytest.raises(ValueError, match="images"):
        model.generate(scenes.features["image"][0])


def test_caption_training_lowers_the_loss_and_is_reproducible(scenes):
    def run():
        keras.utils.set_random_seed(0)
        model = CaptionModel(**TINY_CAPTIONER)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)  # no tracing: faster here
        x, y = model.teacher_forcing_data(scenes)
        before = model.evaluate(x, y, verbose=0)[0]
        for _ in range(8):
            model.train_on_batch(x, y)
        return before, model.evaluate(x, y, verbose=0)[0], keras.ops.convert_to_numpy(model(x))

    before, after, logits = run()
    assert after < before
    _, _, again = run()
    np.testing.assert_allclose(logits, again, rtol=1e-5, atol=1e-6)


def test_caption_model_bad_arguments():
    with pytest.raises(ValueError, match="hidden_dim"):
        CaptionModel(hidden_dim=0)
    with pytest.raises(ValueError, match="sequence_length"):
        CaptionModel(sequence_length=1)
    with pytest.raises(ValueError, match="data"):
        CaptionModel(**TINY_CAPTIONER).teacher_forcing_data("captions")
