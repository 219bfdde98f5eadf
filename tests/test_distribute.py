"""tf.distribute: the same training under no strategy, MirroredStrategy on two logical CPUs (a fresh process)
and MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1; the input shards; the launcher's errors.

The three runs are small (512 samples, 2 epochs) and shared by the tests through module-scoped fixtures: the
whole file takes about a minute on 2 cores, most of it in starting TensorFlow in three fresh processes.
"""

from __future__ import annotations

import os
import pathlib

import pytest

from mmkeras import distribute
from mmkeras.distribute import RunConfig, WorkerError

CONFIG = {"train_size": 512, "test_size": 256, "epochs": 2, "global_batch_size": 32, "deterministic": True}
# Test accuracy on 256 samples after 2 epochs of Adam, without dropout or augmentation, so that the set-ups differ
# only by float rounding (measured: single 0.430, mirrored 0.441, two workers 0.441; the first epoch's losses agree
# to 3e-5). With dropout on, a single seed moves by up to 0.08 between set-ups (notebook 15 compares them over seeds)
# because one device and two replicas draw different dropout masks.
TOLERANCE = 0.05
# Two plain SGD steps without dropout or augmentation: every set-up must take the same step (to float rounding).
STEP = {"train_size": 64, "test_size": 32, "epochs": 1, "global_batch_size": 32, "deterministic": True,
        "optimizer": "sgd", "learning_rate": 0.05}


@pytest.fixture(scope="module")
def local_runs():
    """`single` and `mirrored`, one after the other in one fresh process."""
    single, mirrored = distribute.run_in_subprocess(("single", "mirrored"), CONFIG, timeout=240)
    return {"single": single, "mirrored": mirrored}


@pytest.fixture(scope="module")
def same_step_runs(tmp_path_factory):
    single, mirrored = distribute.run_in_subprocess(("single", "mirrored"), STEP, timeout=240)
    workers = distribute.run_multi_worker(2, STEP, timeout=240, workdir=tmp_path_factory.mktemp("step"))["workers"]
    return {"single": single, "mirrored": mirrored, "worker 0": workers[0], "worker 1": workers[1]}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    return distribute.run_multi_worker(2, CONFIG, timeout=240, workdir=tmp_path_factory.mktemp("cluster"))


def test_single_device_run_learns(local_runs):
    single = local_runs["single"]
    assert (single["num_replicas"], single["per_replica_batch_size"], single["steps_per_epoch"]) == (1, 32, 16)
    assert single["history"]["loss"][-1] < single["history"]["loss"][0]
    assert single["test_accuracy"] > 0.3  # chance is 1/8


def test_mirrored_on_two_logical_cpus_matches_single_device(local_runs):
    single, mirrored = local_runs["single"], local_runs["mirrored"]
    # B = b * R: the same 32 samples per step, 16 on each of the two replicas, the same number of steps
    assert (mirrored["num_replicas"], mirrored["per_replica_batch_size"]) == (2, 16)
    assert mirrored["global_batch_size"] == single["global_batch_size"] == 32
    assert mirrored["steps_per_epoch"] == single["steps_per_epoch"]
    assert mirrored["history"]["loss"][-1] < mirrored["history"]["loss"][0]
    # the same initial weights and global batches, the gradient all-reduced: nearly the same first epoch
    assert mirrored["history"]["loss"][0] == pytest.approx(single["history"]["loss"][0], rel=1e-3)
    assert abs(mirrored["test_accuracy"] - single["test_accuracy"]) <= TOLERANCE


def test_two_workers_on_loopback_train_in_sync_and_match_single_device(cluster, local_runs):
    workers = cluster["workers"]
    assert [w["task_index"] for w in workers] == [0, 1]
    assert all(w["num_replicas"] == 2 and w["num_workers"] == 2 for w in workers)
    assert all(w["per_replica_batch_size"] == 16 for w in workers)
    # synchronous all-reduce: both workers end with the same weights and log the same global metrics
    assert workers[0]["weights_checksum"] == pytest.approx(workers[1]["weights_checksum"], rel=1e-6)
    assert workers[0]["history"] == workers[1]["history"]
    assert cluster["chief"]["history"]["loss"][-1] < cluster["chief"]["history"]["loss"][0]
    assert abs(cluster["chief"]["test_accuracy"] - local_runs["single"]["test_accuracy"]) <= TOLERANCE
    # two workers of one replica each = one process with two replicas: the same sums of two gradients
    assert cluster["chief"]["weights_checksum"] == pytest.approx(local_runs["mirrored"]["weights_checksum"], rel=1e-9)


def test_every_set_up_takes_the_same_sgd_steps(same_step_runs):
    """Same initial weights, same global batches, gradients all-reduced and scaled by 1 / R: the same update."""
    single = same_step_runs["single"]
    moved = abs(single["weights_checksum"] - single["initial_weights_checksum"])  # sum |w| changed by the steps
    assert moved > 1e-3
    for name, run in same_step_runs.items():
        assert run["optimizer_steps"] == 2, name
        assert run["initial_weights_checksum"] == pytest.approx(single["initial_weights_checksum"], rel=1e-12), name
        assert abs(run["weights_checksum"] - single["weights_checksum"]) < 1e-3 * moved, name
        assert run["history"]["loss"][0] == pytest.approx(single["history"]["loss"][0], rel=1e-5), name


def _shard_ids(data, pipelines, global_batch, replicas):
    """The sample ids each input pipeline yields in one pass (a sample is known by its image's checksum)."""
    import tensorflow as tf

    ids = {round(float(image.sum()), 3): i for i, image in enumerate(data.features["image"])}
    fn = distribute.make_dataset_fn(data, ["image"], global_batch, shuffle=True, seed=3, repeat=False)
    shards = []
    for p in range(pipelines):
        context = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=p,
                                             num_replicas_in_sync=replicas)
        batches = [x["image"].numpy() for x, _ in fn(context)]
        assert {b.shape[0] for b in batches} == {global_batch // replicas}  # the per-replica batch b = B / R
        shards.append([ids[round(float(image.sum()), 3)] for b in batches for image in b])
    return shards


def test_shards_split_every_global_batch_and_cover_the_epoch():
    from mmkeras.data import make_synthetic

    data = make_synthetic(64, seed=5)
    shards = _shard_ids(data, pipelines=2, global_batch=8, replicas=2)
    assert set(shards[0]).isdisjoint(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(64))
    assert len(set(shards[0])) == len(shards[0]) == 32  # no sample twice within a pass
    (one,) = _shard_ids(data, pipelines=1, global_batch=8, replicas=2)
    # worker p holds the p-th half of every global batch of the one-pipeline order: the same global batches
    global_batches = [one[i:i + 8] for i in range(0, 64, 8)]
    assert [shards[0][i:i + 4] for i in range(0, 32, 4)] == [b[:4] for b in global_batches]
    assert [shards[1][i:i + 4] for i in range(0, 32, 4)] == [b[4:] for b in global_batches]


def test_the_order_is_the_same_for_every_iterator_and_new_each_epoch():
    """Keras opens the dataset twice under a strategy (one batch to build the model, then training): the order
    must not depend on how many iterators were created, and must change from one epoch to the next."""
    import tensorflow as tf

    from mmkeras.data import make_synthetic

    fn = distribute.make_dataset_fn(make_synthetic(32, seed=5), ["image"], 8, seed=3, repeat=True)
    ds = fn(tf.distribute.InputContext())
    first = [y.numpy().tolist() for _, y in ds.take(8)]
    again = [y.numpy().tolist() for _, y in fn(tf.distribute.InputContext()).take(8)]
    assert first == again == [y.numpy().tolist() for _, y in ds.take(8)]
    assert first[:4] != first[4:]  # epoch 2 is another order of the same samples
    assert sorted(sum(first[:4], [])) == sorted(sum(first[4:], []))


def test_format_strategies_prints_one_row_per_run(local_runs):
    table = distribute.format_strategies(list(local_runs.values()))
    assert table.splitlines()[2].startswith("| single | 1 | 32 | 32 | ")
    assert table.splitlines()[3].startswith("| mirrored | 2 | 16 | 32 | ")


def test_format_strategies_summarises_several_seeds():
    rows = [{"strategy": name, "num_replicas": r, "per_replica_batch_size": 32 // r, "global_batch_size": 32,
             "test_accuracy": acc, "train_seconds": 2.0} for name, r, acc in
            [("single", 1, 0.8), ("mirrored", 2, 0.7), ("single", 1, 0.6), ("mirrored", 2, 0.9)]]
    lines = distribute.format_strategies(rows).splitlines()
    assert "seeds" in lines[0] and len(lines) == 4
    assert lines[2] == "| single | 1 | 32 | 32 | 2 | 0.700 (0.600-0.800) | 2.0 |"
    assert lines[3] == "| mirrored | 2 | 16 | 32 | 2 | 0.800 (0.700-0.900) | 2.0 |"


def test_auto_shard_options_and_the_batch_arithmetic():
    assert distribute.auto_shard_options("off").experimental_distribute.auto_shard_policy.name == "OFF"
    assert distribute.global_batch_size(16, 2) == 32
    assert distribute.per_replica_batch_size(32, 4) == 8
    assert distribute.steps_per_epoch(512, 32) == 16
    assert distribute.scaled_learning_rate(1e-3, 2, rule="none") == 1e-3
    assert distribute.scaled_learning_rate(1e-3, 2, rule="linear") == pytest.approx(2e-3)
    assert distribute.tf_config([1, 2], 0)["task"] == {"type": "worker", "index": 0}
    ports = distribute.free_ports(3)
    assert len(set(ports)) == 3 and all(0 < p < 65536 for p in ports)


def _running_with(marker: str) -> list[int]:
    """Pids of live processes whose command line mentions `marker` (zombies excluded)."""
    pids = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            state = (proc / "stat").read_text().split(") ")[-1][:1]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            pids.append(int(proc.name))
    return pids


def test_a_failing_worker_stops_the_cluster_with_a_clear_error(tmp_path):
    with pytest.raises(WorkerError, match=r"(?s)worker 1 exited with code 2.*asked to fail"):
        distribute.run_multi_worker(2, CONFIG, timeout=120, workdir=tmp_path, fail_worker=1)
    assert _running_with(str(tmp_path)) == []  # worker 0, which was waiting for worker 1, was killed


def test_a_cluster_past_its_timeout_is_killed(tmp_path):
    with pytest.raises(WorkerError, match=r"did not finish within timeout=1.0 s"):
        distribute.run_multi_worker(2, CONFIG, timeout=1, workdir=tmp_path)
    assert _running_with(str(tmp_path)) == []


def test_logical_cpus_cannot_be_declared_once_tensorflow_started():
    import tensorflow as tf

    tf.constant(1.0)  # TensorFlow's devices are initialised in this process
    if len(tf.config.list_logical_devices("CPU")) == 2:
        pytest.skip("this process already has two logical CPUs")
    with pytest.raises(RuntimeError, match="fresh process"):
        distribute.configure_logical_cpus(2)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: distribute.per_replica_batch_size(33, 2), r"multiple of the 2 replicas.*global_batch_size=33"),
        (lambda: distribute.global_batch_size(0, 2), r"per_replica_batch_size=0"),
        (lambda: distribute.scaled_learning_rate(1e-3, 2, rule="cubic"), r"`rule` must be one of.*'cubic'"),
        (lambda: distribute.scaled_learning_rate(-1.0, 2), r"learning_rate=-1.0"),
        (lambda: distribute.make_strategy("parameter_server"), r"`name` must be one of.*'parameter_server'"),
        (lambda: distribute.steps_per_epoch(16, 32), r"at least one global batch.*num_samples=16"),
        (lambda: RunConfig(global_batch_size=0), r"global_batch_size=0"),
        (lambda: RunConfig(deterministic="yes"), r"`deterministic` must be True or False"),
        (lambda: RunConfig(optimizer="rmsprop"), r"`optimizer` must be one of.*'rmsprop'"),
        (lambda: RunConfig(modalities=("smell",)), r"smell"),
        (lambda: RunConfig.from_dict({"epoch": 2}), r"Unknown RunConfig arguments \['epoch'\]"),
        (lambda: distribute.tf_config([2222, 2223], 2), r"below the 2 workers.*index=2"),
        (lambda: distribute.run_in_subprocess(("multi_worker",)), r"`strategies item`.*'multi_worker'"),
        (lambda: distribute.run_in_subprocess(()), r"at least one"),
        (lambda: distribute.run_in_subprocess(("mirrored", "mirrored")), r"'mirrored' once per process"),
        (lambda: distribute.run_multi_worker(0), r"num_workers=0"),
        (lambda: distribute.run_multi_worker(3, CONFIG), r"multiple of the 3 replicas"),
        (lambda: distribute.run_jax_data_parallel({"modalities": ["text", "image"]}), r"JAX has no string"),
        (lambda: distribute.auto_shard_options("rows"), r"`policy` must be one of.*'rows'"),
        (lambda: distribute.compare_strategies(CONFIG, seeds=[]), r"at least one seed"),
        (lambda: distribute.compare_strategies(CONFIG, seeds=[-1]), r"seeds item.*-1"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_multi_worker_strategy_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.make_strategy("multi_worker")


def test_make_dataset_fn_checks_its_label():
    from mmkeras.data import make_synthetic

    with pytest.raises(ValueError, match=r"`label_key` must be one of.*'mood'"):
        distribute.make_dataset_fn(make_synthetic(8), ["image"], 4, label_key="mood")


def test_importing_the_module_does_not_start_tensorflow():
    import subprocess
    import sys

    check = "import sys, mmkeras.distribute; print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(pathlib.Path(distribute.__file__).parents[2])))
    assert done.stdout.strip() == "False", done.stderr


def test_the_jax_program_is_a_module_that_checks_its_command_line():
    """`run_jax_data_parallel` starts `python -m mmkeras.distribute.jax_worker CONFIG`; without a config it
    stops at once with its usage (training itself runs in notebook 15)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "mmkeras.distribute.jax_worker"], capture_output=True, text=True,
                          timeout=60, env=distribute.child_env())
    assert done.returncode == 2 and "usage: python -m mmkeras.distribute.jax_worker" in done.stderr


def test_cli_distribute_refuses_a_batch_that_the_workers_cannot_share(capsys):
    """`mmkeras distribute --workers 3`: B = 32 is not a multiple of 3 replicas: exit 2 with the reason."""
    from mmkeras.apps.cli import main

    assert main(["distribute", "--workers", "3", "--train-size", "64", "--epochs", "1"]) == 2
    assert "mmkeras distribute: error:" in capsys.readouterr().err
    assert main(["distribute", "--seeds", "0,x"]) == 2
    assert "--seeds must be comma-separated integers" in capsys.readouterr().err
