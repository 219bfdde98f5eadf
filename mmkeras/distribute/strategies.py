"""Building the `tf.distribute.Strategy` of each set-up: none, `MirroredStrategy` over logical CPUs, or
`MultiWorkerMirroredStrategy` over processes joined through `TF_CONFIG`.

* `"single"`: no strategy (Keras's default strategy, one device);
* `"mirrored"`: `tf.distribute.MirroredStrategy` over two *logical* CPU devices of one process. Logical devices
  must be declared before TensorFlow initialises its devices (`configure_logical_cpus`), that is in a fresh
  process (`mmkeras.distribute.launch.run_in_subprocess` starts one);
* `"multi_worker"`: `tf.distribute.MultiWorkerMirroredStrategy`, one process per worker, joined through
  `TF_CONFIG` (a cluster of `127.0.0.1:<free port>` addresses and each process's task index; worker 0 acts as
  the chief: it is the one that would write checkpoints and logs).

What Keras 3.15 needs on top of the TensorFlow tutorials (checked here, on TensorFlow 2.21): with
`MultiWorkerMirroredStrategy`, Keras calls `strategy.reduce("MEAN", ..., axis=0)` on a nested dict of the first
batch (to build the model symbolically) and on scalar logs, which `MultiWorkerMirroredStrategy.reduce` refuses
("Attempt to convert a value ({...}) to a Tensor", then "Invalid reduction dimension 0 for input with 0
dimensions"; keras-team/keras#20585). `make_strategy` returns subclasses whose `reduce` reduces nested values
leaf by leaf, reduces rank-0 values across replicas only, and returns strings (which cannot be averaged) from
the first local replica. Nothing else is changed: gradients go through the strategy's own all-reduce.
"""

from __future__ import annotations

import os

from mmkeras._validation import check_choice, check_int

STRATEGIES = ("single", "mirrored", "multi_worker")


def configure_logical_cpus(num_devices: int = 2) -> list[str]:
    """Splits the physical CPU into `num_devices` logical devices (so that `MirroredStrategy` has several).

    Must run before TensorFlow initialises its devices (before any op or `list_logical_devices`): call it first
    thing in a fresh process. Calling it again with the same number is harmless.

    Returns:
        The logical device names, e.g. `["/device:CPU:0", "/device:CPU:1"]`.

    Raises:
        RuntimeError: when TensorFlow already initialised its devices with another number of them.
    """
    import tensorflow as tf

    num_devices = check_int("num_devices", num_devices)
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
    except RuntimeError as error:
        existing = tf.config.list_logical_devices("CPU")
        if len(existing) != num_devices:
            raise RuntimeError(
                f"TensorFlow has already initialised {len(existing)} CPU device(s), so {num_devices} logical "
                f"devices can no longer be declared: call configure_logical_cpus first in a fresh process "
                f"(run_in_subprocess does). TensorFlow said: {error}") from error
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def _with_keras3_reduce(base):
    """`base` (a tf.distribute strategy class) subclassed with the `reduce` Keras 3.15 needs
    (keras-team/keras#20585; see the module docstring)."""
    import tensorflow as tf

    class Keras3Strategy(base):
        def reduce(self, reduce_op, value, axis=None):
            if not isinstance(value, (tf.distribute.DistributedValues, tf.Tensor)) and tf.nest.is_nested(value):
                return tf.nest.map_structure(lambda v: self.reduce(reduce_op, v, axis), value)
            local = self.experimental_local_results(value)[0]
            if getattr(local, "dtype", None) == tf.string:
                return local  # strings cannot be averaged; Keras only reads their shape here
            if axis is not None and local.shape.rank == 0:
                axis = None  # a scalar log: reduce across replicas, there is no batch axis
            return super().reduce(reduce_op, value, axis)

    Keras3Strategy.__name__ = Keras3Strategy.__qualname__ = base.__name__
    return Keras3Strategy


def make_strategy(name: str, num_devices: int = 2):
    """The `tf.distribute.Strategy` of one configuration.

    Args:
        name: str. `"single"` (Keras's default strategy: no distribution), `"mirrored"` (all-reduce over
            `num_devices` logical CPUs of this process: `configure_logical_cpus` runs first) or
            `"multi_worker"` (reads the cluster from `TF_CONFIG`; every worker must call it).
        num_devices: int. Devices of the mirrored strategy. Defaults to `2`.
    """
    import tensorflow as tf

    name = check_choice("name", name, STRATEGIES)
    num_devices = check_int("num_devices", num_devices)
    if name == "single":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = configure_logical_cpus(num_devices)[:num_devices]
        return _with_keras3_reduce(tf.distribute.MirroredStrategy)(devices)
    if "TF_CONFIG" not in os.environ:
        raise ValueError("`name='multi_worker'` needs the cluster in the TF_CONFIG environment variable "
                         "(run_multi_worker sets it for every worker). Received: TF_CONFIG unset")
    communication = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING)  # NCCL needs GPUs
    return _with_keras3_reduce(tf.distribute.MultiWorkerMirroredStrategy)(communication_options=communication)
