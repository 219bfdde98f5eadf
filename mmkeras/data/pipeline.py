"""`tf.data` input pipelines: any `MultimodalData` -> batches of `({modality: tensor}, labels)`.

TensorFlow-specific on purpose: tf.data is how Keras 3 on TensorFlow feeds strings, shuffles and prefetches
(TensorFlow is imported on the first call, not when `mmkeras` is imported).

The pipeline does not `cache()`: its source is arrays already in memory, so a cache would only copy them, and
TensorFlow warns ("did not fully read the dataset being cached") whenever an iterator stops before the end of
an epoch, as `next(iter(dataset))` does. A full epoch of 2000 moving toys takes the same time either way.
"""

from __future__ import annotations

from mmkeras._validation import check_bool, check_int
from mmkeras.data.schema import MultimodalData


def as_multimodal(data, argument: str = "data") -> MultimodalData:
    """Accepts a `MultimodalData`, or a pair `(features, labels)` of dicts of arrays (labels may be `None`).

    A plain label array `(features, y)` is taken as one label named `"label"`.
    """
    if isinstance(data, MultimodalData):
        return data
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], dict):
        features, labels = data
        if labels is not None and not isinstance(labels, dict):
            labels = {"label": labels}
        return MultimodalData(features, labels or {})
    raise ValueError(
        f"`{argument}` must be a MultimodalData or a pair (features, labels): features a dict {{modality: array}}, "
        f"labels a dict {{name: int array}} or one int array. Received: {type(data).__name__}"
    )


def resolve_label_keys(data: MultimodalData, label_keys=None):
    """`None` -> the schema's first label (or `()` for unlabeled data); a str stays one label; a list is several.

    Raises:
        ValueError: for a name the schema has no label of.
    """
    names = data.schema.label_names
    if label_keys is None:
        return names[0] if names else ()
    keys = [label_keys] if isinstance(label_keys, str) else list(label_keys)
    unknown = [k for k in keys if k not in names]
    if unknown:
        raise ValueError(f"`label_keys` must be label names of this data, {names or '(it has no labels)'}. "
                         f"Received: label_keys={label_keys!r}")
    return label_keys if isinstance(label_keys, str) else tuple(keys)


def to_dataset(
    data,
    modalities=None,
    label_keys=None,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
):
    """Turns a split into a batched, optionally shuffled and prefetched `tf.data.Dataset`.

    Args:
        data: MultimodalData, or a pair `(features, labels)` of dicts of arrays.
        modalities: list of str or None. Which modalities to feed. Defaults to all of the schema's.
        label_keys: None, str or list of str. `None` yields the schema's first label (nothing for unlabeled
            data); a str yields that label array; a list yields a dict of labels (for several heads);
            `()` yields the features alone. Defaults to `None`.
        batch_size: int. Samples per batch. Defaults to `64`.
        shuffle: bool. Reshuffle every epoch (with `seed`). Defaults to `False`.
        seed: int. Shuffle seed. Defaults to `0`.

    Returns:
        A dataset of `({modality: (batch, ...)}, labels)`, or of `{modality: ...}` alone without labels.

    Example:
    >>> from mmkeras.data import make_synthetic
    >>> ds = to_dataset(make_synthetic(10), modalities=["image", "text"], batch_size=4)
    >>> features, labels = next(iter(ds))
    >>> sorted(features), tuple(labels.shape)
    (['image', 'text'], (4,))
    """
    import tensorflow as tf

    data = as_multimodal(data)
    modalities = data.schema.select_modalities(modalities)
    batch_size = check_int("batch_size", batch_size)
    check_bool("shuffle", shuffle)
    seed = check_int("seed", seed, minimum=0)
    keys = resolve_label_keys(data, label_keys)
    features = {m: data.features[m].astype(str) if data.schema.modality(m).dtype == "string" else data.features[m]
                for m in modalities}
    if isinstance(keys, str):
        ds = tf.data.Dataset.from_tensor_slices((features, data.labels[keys]))
    elif keys:
        ds = tf.data.Dataset.from_tensor_slices((features, {k: data.labels[k] for k in keys}))
    else:
        ds = tf.data.Dataset.from_tensor_slices(features)
    if shuffle:
        ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
