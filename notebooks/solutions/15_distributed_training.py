"""Solutions to the exercises of notebook 15 (scaling out with tf.distribute).

Run: `python notebooks/solutions/15_distributed_training.py` (add `MMKERAS_SMOKE=1` for a quick run, about half a
minute; the full run trains four models in fresh processes: a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import pathlib
import subprocess
import tempfile

import tensorflow as tf

import mmkeras
from mmkeras import distribute
from mmkeras.data import make_synthetic

SIZES = mmkeras.config.by_mode(full=dict(train_size=2048, test_size=1024, epochs=4),
                               smoke=dict(train_size=128, test_size=64, epochs=1))
LR = 1e-2


def exercise_1_linear_scaling():
    """B = 64 on two mirrored replicas (b = 32 kept), with the learning rate of B = 32 and with it scaled.

    The single-device reference (B = 32) runs in this process; both mirrored runs share one fresh process.
    """
    reference = distribute.train_configuration(
        "single", distribute.RunConfig(global_batch_size=32, learning_rate=LR, **SIZES))
    results = {"single, B = 32, lr": reference}
    for label, lr in (("mirrored, B = 64, lr", LR),
                      ("mirrored, B = 64, 2 lr", distribute.scaled_learning_rate(LR, 2, "linear"))):
        config = distribute.RunConfig(global_batch_size=64, learning_rate=lr, **SIZES)
        (results[label],) = distribute.run_in_subprocess(("mirrored",), config, timeout=900)
    for label, run in results.items():
        print(f"{label:<24} steps/epoch {run['steps_per_epoch']:>3}  final loss {run['history']['loss'][-1]:.3f}  "
              f"test accuracy {run['test_accuracy']:.3f}")
    print("With B = 64 there are half as many steps per epoch; the scaled learning rate makes up for part of it.")
    return results


def exercise_2_three_workers():
    """Which samples each of three workers reads, and which global batches are allowed."""
    data = make_synthetic(30, seed=5)
    ids = {round(float(image.sum()), 3): i for i, image in enumerate(data.features["image"])}
    fn = distribute.make_dataset_fn(data, ["image"], global_batch=6, shuffle=False, repeat=False)
    shards = []
    for worker in range(3):
        context = tf.distribute.InputContext(num_input_pipelines=3, input_pipeline_id=worker, num_replicas_in_sync=3)
        shard = [ids[round(float(image.sum()), 3)] for x, _ in fn(context) for image in x["image"].numpy()]
        shards.append(shard)
        batch = context.get_per_replica_batch_size(6)
        print(f"worker {worker} reads samples {shard}  (places {2 * worker}-{2 * worker + 1} of every global "
              f"batch of 6; b = {batch})")
    assert sorted(sum(shards, [])) == list(range(30))
    allowed = [b for b in range(1, 25) if b % 3 == 0]
    print(f"global batch sizes up to 24 allowed with R = 3: {allowed}")
    try:
        distribute.per_replica_batch_size(32, 3)
    except ValueError as error:
        print(f"B = 32: {error}")
    return shards


def exercise_3_a_hanging_cluster():
    """A timeout shorter than the training: every worker is killed, none is left behind."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            distribute.run_multi_worker(2, distribute.RunConfig(**SIZES), timeout=3, workdir=folder)
        except distribute.WorkerError as error:
            print(f"WorkerError: {str(error).splitlines()[0]}")
        left = subprocess.run(["pgrep", "-f", folder], capture_output=True, text=True).stdout.split()
        print(f"processes still running with {pathlib.Path(folder).name} in their command line: {left or 'none'}")
        return left


def exercise_4_auto_sharding():
    """`fit` on one globally batched dataset, auto-sharded with the DATA policy, here with no strategy to keep it
    short (the same options go to the mirrored or the multi-worker run)."""
    import keras

    from mmkeras.data import load_splits
    from mmkeras.models import build_fusion_classifier
    from mmkeras.training import evaluate_classifier

    mmkeras.seed_everything(0)
    splits = load_splits(SIZES["train_size"], 8, SIZES["test_size"])
    train = splits["train"]
    ds = tf.data.Dataset.from_tensor_slices(
        ({"text": train.features["text"].astype(str), "image": train.features["image"]}, train.labels["label"]))
    ds = ds.shuffle(len(train), seed=0).batch(32, drop_remainder=True)
    ds = ds.with_options(distribute.auto_shard_options("data"))
    model = build_fusion_classifier(["text", "image"])
    model.compile(optimizer=keras.optimizers.Adam(LR), steps_per_execution=1)
    model.fit(ds, epochs=SIZES["epochs"], verbose=0)
    accuracy = evaluate_classifier(model, splits["test"])["accuracy"]
    print(f"auto-sharded input (DATA policy): test accuracy {accuracy:.3f}")
    print("With DATA sharding every worker reads and preprocesses the whole dataset and keeps 1/P of it: fine for "
          "arrays in memory, wasteful for big files (use FILE sharding with one file per worker or more).")
    return accuracy


if __name__ == "__main__":
    exercise_1_linear_scaling()
    exercise_2_three_workers()
    exercise_3_a_hanging_cluster()
    exercise_4_auto_sharding()
