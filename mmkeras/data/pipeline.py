"""`tf.data` input pipelines: NumPy splits -> batches of `({modality: tensor}, labels)`.

TensorFlow-specific on purpose: tf.data is how Keras 3 on TensorFlow feeds strings, shuffles and prefetches.
"""

from __future__ import annotations

import tensorflow as tf

from mmkeras.data.synthetic import LABEL_KEYS, MODALITIES, MultimodalData, check_modalities


def to_dataset(
    data: MultimodalData,
    modalities=MODALITIES,
    label_keys="label",
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
    cache: bool = True,
) -> tf.data.Dataset:
    """Turns a split into a batched, cached and prefetched `tf.data.Dataset`.

    Args:
        data: MultimodalData. A split from `make_synthetic` / `load_splits`.
        modalities: list of str. Which modalities to feed. Defaults to all four.
        label_keys: str or list of str. `"label"` yields the label array; a list yields a dict of labels
            (for models with auxiliary heads). Defaults to `"label"`.
        batch_size: int. Samples per batch. Defaults to `64`.
        shuffle: bool. Reshuffle every epoch (with `seed`). Defaults to `False`.
        seed: int. Shuffle seed. Defaults to `0`.
        cache: bool. Cache the elements in memory after the first pass. Defaults to `True`.

    Returns:
        A dataset of `({modality: (batch, ...)}, labels)`.

    Example:
    >>> from mmkeras.data import make_synthetic
    >>> ds = to_dataset(make_synthetic(10), modalities=["image", "text"], batch_size=4)
    >>> features, labels = next(iter(ds))
    >>> sorted(features), tuple(labels.shape)
    (['image', 'text'], (4,))
    """
    if not isinstance(data, MultimodalData):
        raise ValueError(f"`data` must be a MultimodalData (see make_synthetic). Received: {type(data).__name__}")
    modalities = check_modalities(modalities)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}")
    keys = [label_keys] if isinstance(label_keys, str) else list(label_keys)
    unknown = [k for k in keys if k not in LABEL_KEYS]
    if unknown or not keys:
        raise ValueError(f"`label_keys` must be names from {LABEL_KEYS}. Received: label_keys={label_keys!r}")
    features = {m: data.features[m].astype(str) if m == "text" else data.features[m] for m in modalities}
    labels = data.labels[keys[0]] if isinstance(label_keys, str) else {k: data.labels[k] for k in keys}
    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
