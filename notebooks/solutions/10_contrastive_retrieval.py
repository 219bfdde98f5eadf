"""Solutions to the exercises of notebook 10 (contrastive image-text learning and cross-modal retrieval).

Run: `python notebooks/solutions/10_contrastive_retrieval.py` (add `MMKERAS_SMOKE=1` for a quick run; the full
run trains the notebook's dual encoder once: about a minute on 2 CPU cores).
"""

from __future__ import annotations

import math

import numpy as np

import mmkeras
from mmkeras.contrastive import retrieval_recall, train_clip
from mmkeras.data.scenes import description_ids, load_scene_splits, retrieval_ceiling

SMOKE = mmkeras.config.is_smoke()
SIZES = mmkeras.config.by_mode(full=(4000, 500, 500), smoke=(128, 32, 100))  # the notebook's sizes
EPOCHS = mmkeras.config.by_mode(full=20, smoke=1)
NUM_DESCRIPTIONS = 540


def oracle_similarity(labels) -> np.ndarray:
    """A perfect model's similarity: 1 where two scenes share their description, else 0."""
    ids = description_ids(labels)
    return (ids[:, None] == ids[None, :]).astype(float)


def exercise_1(test) -> dict:
    """The ceiling at k = 1, 5, 10 on the 100-pair gallery; at k = 1 it is `retrieval_ceiling`."""
    labels = {a: v[:100] for a, v in test.labels.items()}
    ceiling = retrieval_recall(oracle_similarity(labels), ks=(1, 5, 10))
    counts = np.unique(description_ids(labels), return_counts=True)[1]
    print(f"exercise 1: oracle recall {ceiling}, retrieval_ceiling {retrieval_ceiling(labels):.3f}; "
          f"the most frequent description occurs {counts.max()} times")
    assert math.isclose(ceiling[1], retrieval_ceiling(labels), rel_tol=1e-12)
    # A description shared by c <= 5 scenes puts all c equal items in the top 5, so its queries are found for sure;
    # with c > 5 a perfect model finds the right one in the top 5 with probability 5/c only. So the ceiling at
    # k = 5 is 1 exactly when no description occurs more than 5 times (very likely with 540 descriptions).
    assert (ceiling[5] == 1.0) == (counts.max() <= 5), (ceiling, counts.max())
    return ceiling


def false_negative_share(batch_size: int) -> float:
    """Expected share of pairs whose description occurs again in a batch: `1 - (539/540)^(B-1)`."""
    return 1 - (1 - 1 / NUM_DESCRIPTIONS) ** (batch_size - 1)


def exercise_2(train, batch_size: int = 64, batches: int = 200, seed: int = 0) -> int:
    """False negatives per batch: formula vs sampling; the largest batch size with a share under 5 %."""
    rng = np.random.default_rng(seed)
    ids = description_ids(train)
    shares = []
    for _ in range(batches):
        batch = ids[rng.choice(len(ids), size=min(batch_size, len(ids)), replace=False)]
        _, inverse, counts = np.unique(batch, return_inverse=True, return_counts=True)
        shares.append(np.mean(counts[inverse] > 1))
    sampled = float(np.mean(shares))
    largest = max(b for b in range(1, 541) if false_negative_share(b) < 0.05)
    print(f"exercise 2: batch {batch_size}: formula {false_negative_share(batch_size):.3f}, sampled {sampled:.3f}; "
          f"largest batch under 5 %: {largest}")
    if not SMOKE:  # sampling from a small smoke split differs from 540 equally likely descriptions
        assert abs(sampled - false_negative_share(batch_size)) < 0.02
    assert false_negative_share(largest) < 0.05 <= false_negative_share(largest + 1)
    return largest


def exercise_3(model, test) -> tuple[float, float]:
    """Text->image retrieval with one query per *distinct* caption; any image with the description is right."""
    images, texts, ids = test.features["image"], [str(t) for t in test.features["text"]], description_ids(test)
    distinct = {}
    for text, i in zip(texts, ids):
        distinct.setdefault(text, i)  # caption -> its description id
    queries, query_ids = list(distinct), np.array(list(distinct.values()))
    similarity = model.encode_text(queries) @ model.encode_image(images).T  # (distinct captions, 500 images)
    by_description = retrieval_recall(similarity, ks=1, ids=ids, query_ids=query_ids)[1]
    index_level = retrieval_recall(model.similarity(images, texts).T, ks=1)[1]  # the notebook's text->image
    print(f"exercise 3: {len(queries)} distinct captions; recall@1 by description {by_description:.3f}, "
          f"index-level text->image recall@1 {index_level:.3f} (ceiling {retrieval_ceiling(test):.3f})")
    assert 0 <= index_level <= by_description + 1e-9 or SMOKE
    return by_description, index_level


def main():
    mmkeras.seed_everything(0)
    splits = load_scene_splits(*SIZES, seed=0)
    exercise_1(splits["test"])
    exercise_2(splits["train"])
    model, _ = train_clip(splits["train"], epochs=EPOCHS, batch_size=64, learning_rate=2e-3, seed=0)
    by_description, _ = exercise_3(model, splits["test"])
    if not SMOKE:
        assert by_description > 0.9, by_description


if __name__ == "__main__":
    main()
