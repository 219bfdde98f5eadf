"""The input pipeline of a distributed run: the same global batches for every set-up, each worker its share.

The input is split by hand with `strategy.distribute_datasets_from_function` (`make_dataset_fn`): TensorFlow
calls the function once per input pipeline (one per worker) with a `tf.distribute.InputContext`; every pipeline
draws the same order of the samples for the epoch (a stateless shuffle), cuts it into global batches of `B`,
keeps its own `B / P` of each, and batches them with the per-replica batch size
`input_context.get_per_replica_batch_size(B) = B / R`: so every set-up trains on the same global batches.
(The alternative, passing a globally batched `tf.data.Dataset` to `fit`, lets tf.data auto-shard it: with
in-memory arrays there are no files to split, so the `AutoShardPolicy.DATA` policy makes each worker read
everything and keep its share of every batch; `auto_shard_options` sets that policy explicitly.)

Under a strategy, Keras 3.15's `fit` opens the dataset once to take a batch for building the model, then again
to train: a `shuffle(seed=...)` pipeline then trains on another order than a single device does (which opens it
once). `make_dataset_fn` draws each epoch's order from a stateless seed, so every iterator gives the same one.
"""

from __future__ import annotations

from mmkeras._validation import check_bool, check_choice, check_int
from mmkeras.distribute.batching import per_replica_batch_size, steps_per_epoch


def auto_shard_options(policy: str = "data"):
    """`tf.data.Options` with an explicit auto-shard policy, for a dataset passed to `fit` as it is.

    `"data"` (each worker reads everything and keeps its share of the elements: right for in-memory arrays),
    `"file"` (each worker reads its own files: right for TFRecord shards), `"off"` (every worker sees every
    element: only when you shard yourself, as `make_dataset_fn` does).

    Example:
    >>> options = auto_shard_options("data")
    >>> options.experimental_distribute.auto_shard_policy.name
    'DATA'
    """
    import tensorflow as tf

    policies = {"data": tf.data.experimental.AutoShardPolicy.DATA, "file": tf.data.experimental.AutoShardPolicy.FILE,
                "off": tf.data.experimental.AutoShardPolicy.OFF, "auto": tf.data.experimental.AutoShardPolicy.AUTO}
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policies[check_choice("policy", policy, tuple(policies))]
    return options


def make_dataset_fn(data, modalities, global_batch: int, label_key: str = "label", shuffle: bool = True,
                    seed: int = 0, repeat: bool = True):
    """A `dataset_fn(input_context)` for `strategy.distribute_datasets_from_function`: one worker's share.

    Every set-up sees the same global batches. Epoch `e` visits the samples in one order, drawn from the
    stateless seed `(seed, e)` (`tf.random.experimental.stateless_shuffle`: the same on every worker, in every
    process, however many iterators Keras opens), cut into `n // B` global batches of `B`; input pipeline `p` of
    `P` (one per worker, `input_context.input_pipeline_id` of `num_input_pipelines`) keeps the `B / P` samples
    `[p B/P, (p + 1) B/P)` of every global batch and batches them by the per-replica batch
    `b = B / R` (`input_context.get_per_replica_batch_size(B)`), so each of its replicas takes its own `b`.
    Within an epoch the pipelines' shares are disjoint and together cover the `(n // B) B` samples that fill
    whole batches; the `n mod B` left over change with the order, so over epochs every sample is used. One
    device, two mirrored devices and two workers therefore compute on exactly the same samples at every step,
    which is what makes their runs comparable (this is `AutoShardPolicy.DATA`'s split, done by hand). Every
    worker holds the whole split in memory to do so; for data that does not fit, shard files instead (one or
    more TFRecord files per worker, `auto_shard_options("file")`), and the global batches then differ from
    one device's.

    Batches are full so that every replica computes on `b` samples, and with `repeat` the dataset is infinite:
    give `fit` `steps_per_epoch = n // B` (`steps_per_epoch`), the same number of steps on every worker, or the
    collectives of a worker that ran out of data would wait forever.

    Args:
        data: MultimodalData or `(features, labels)`. The training split.
        modalities: list of str. The model's inputs.
        global_batch: int. `B`, a multiple of the number of replicas and at most the number of samples.
        label_key: str. The label to train on. Defaults to `"label"`.
        shuffle: bool. A new order every epoch (else the data's own order). Defaults to `True`.
        seed: int. Seed of the orders. Defaults to `0`.
        repeat: bool. Repeat forever (training) or pass once. Defaults to `True`.

    Example:
    >>> import tensorflow as tf
    >>> from mmkeras.data import make_synthetic
    >>> fn = make_dataset_fn(make_synthetic(16), ["image"], global_batch=8, shuffle=False, repeat=False)
    >>> shard = fn(tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2))
    >>> [tuple(x["image"].shape) for x, y in shard]
    [(4, 32, 32, 3), (4, 32, 32, 3)]
    """
    import tensorflow as tf

    from mmkeras.data.pipeline import as_multimodal

    data = as_multimodal(data)
    modalities = data.schema.select_modalities(list(modalities))
    global_batch = check_int("global_batch_size", global_batch)
    if label_key not in data.labels:
        raise ValueError(f"`label_key` must be one of the data's labels {sorted(data.labels)}. "
                         f"Received: label_key={label_key!r}")
    shuffle, repeat = check_bool("shuffle", shuffle), check_bool("repeat", repeat)
    seed = check_int("seed", seed, minimum=0)
    features = {m: data.features[m].astype(str) if data.schema.modality(m).dtype == "string" else data.features[m]
                for m in modalities}
    labels = data.labels[label_key]
    num_samples = len(labels)
    steps = steps_per_epoch(num_samples, global_batch)

    def dataset_fn(input_context):
        batch = per_replica_batch_size(global_batch, input_context.num_replicas_in_sync)
        pipelines, pipeline = input_context.num_input_pipelines, input_context.input_pipeline_id
        share = per_replica_batch_size(global_batch, pipelines)  # B / P samples of every global batch
        tensors = {m: tf.constant(v) for m, v in features.items()}, tf.constant(labels)

        def epoch_share(epoch):
            order = tf.range(num_samples, dtype=tf.int64)
            if shuffle:
                order = tf.random.experimental.stateless_shuffle(order, seed=tf.stack([tf.constant(seed, tf.int64),
                                                                                       epoch]))
            order = tf.reshape(order[: steps * global_batch], (steps, pipelines, share))[:, pipeline]  # (steps, B/P)
            return tf.data.Dataset.from_tensor_slices(tf.reshape(order, (-1,)))

        epochs = tf.data.Dataset.range(2**62 if repeat else 1)
        indices = epochs.flat_map(epoch_share).batch(batch, drop_remainder=True)  # (b,) ids per replica batch
        ds = indices.map(lambda ids: tf.nest.map_structure(lambda t: tf.gather(t, ids), tensors),
                         num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.with_options(auto_shard_options("off")).prefetch(tf.data.AUTOTUNE)  # already split by hand

    return dataset_fn


def distribute_input(strategy, dataset_fn, preprocessor=None):
    """The input of `fit` under `strategy`: `dataset_fn` called through the strategy (one input pipeline per
    worker), or called directly with a one-pipeline `InputContext` under the default strategy.

    Args:
        strategy: a `tf.distribute.Strategy`.
        dataset_fn: function `InputContext -> tf.data.Dataset` of raw batches (`make_dataset_fn`).
        preprocessor: `MultimodalPreprocessor` or None: the model's (`model.preprocessor`). A distributed
            dataset reaches a task model's `fit` as it is, so each worker's pipeline maps the preprocessor over
            its own batches; a plain dataset (default strategy) stays raw and `fit` preprocesses it.
    """
    import tensorflow as tf

    if strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy():
        return dataset_fn(tf.distribute.InputContext())
    if preprocessor is not None:
        raw_fn = dataset_fn

        def dataset_fn(input_context):  # token ids, log-mel spectrograms: computed by this worker's pipeline
            return raw_fn(input_context).map(lambda x, y: (preprocessor(x), y), num_parallel_calls=tf.data.AUTOTUNE,
                                             deterministic=True)

    return strategy.distribute_datasets_from_function(dataset_fn)
