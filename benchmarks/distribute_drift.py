"""Benchmark: how fast one device and two mirrored replicas drift apart when only float rounding separates them.

    python benchmarks/distribute_drift.py                     # 2, 4, ..., 64 SGD steps at a constant 0.05
    python benchmarks/distribute_drift.py --steps 2,32 --learning-rate 0.01

Both set-ups start from the same weights, train the course's text + image classifier without dropout or
augmentation (`RunConfig(deterministic=True)`) on the same global batches (`make_dataset_fn`) with plain SGD at a
constant rate, so in exact arithmetic they would take the same steps. The script prints, after each number of
steps, the largest weight difference `max |w_single - w_mirrored|` against how far the weights moved,
`max |w_single - w_0|`. Notebook 15 and `RunConfig.deterministic` quote its figures.

It declares two logical CPUs first thing, so it must run as its own process (as here), not imported.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def measure(steps: int, learning_rate: float, train_size: int, seed: int = 0) -> dict:
    """Weights after `steps` SGD steps on one device and on two mirrored replicas; their largest difference.

    Every call trains on the same `train_size` samples in the same order, so `steps` walks along one trajectory.
    """
    import keras
    import numpy as np

    from mmkeras import distribute
    from mmkeras.config import seed_everything
    from mmkeras.data import load_splits

    config = distribute.RunConfig(train_size=train_size, test_size=8, epochs=1, deterministic=True, seed=seed)
    weights = {}
    for name in ("single", "mirrored"):
        strategy = distribute.make_strategy(name, 2)
        seed_everything(seed)
        train = load_splits(config.train_size, 8, 8, seed=seed)["train"]
        dataset = distribute.distribute_input(
            strategy, distribute.make_dataset_fn(train, config.modalities, config.global_batch_size, seed=seed))
        with strategy.scope():
            model = distribute.build_model(config)
            model.compile(optimizer=keras.optimizers.SGD(learning_rate), steps_per_execution=1)
        start = [np.array(w) for w in model.get_weights()]
        model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
        weights[name] = (start, [np.array(w) for w in model.get_weights()])
    (start, single), (_, mirrored) = weights["single"], weights["mirrored"]
    return {"steps": steps,
            "max_difference": max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored)),
            "max_movement": max(float(np.abs(a - w).max()) for a, w in zip(single, start))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="2,4,8,16,32,64",
                        help="comma-separated numbers of SGD steps, all along one run (default: 2,4,8,16,32,64)")
    parser.add_argument("--learning-rate", type=float, default=0.05, help="constant SGD rate (default: 0.05)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and data (default: 0)")
    args = parser.parse_args(argv)
    steps = [int(s) for s in args.steps.split(",") if s.strip()]
    if not steps or min(steps) < 1 or args.learning_rate <= 0:
        parser.error(f"--steps must be positive integers and --learning-rate > 0. Received: --steps {args.steps!r} "
                     f"--learning-rate {args.learning_rate}")

    from mmkeras import distribute

    distribute.configure_logical_cpus(2)  # before TensorFlow starts its devices
    print(f"one device vs MirroredStrategy on 2 logical CPUs, SGD at {args.learning_rate}, seed {args.seed}")
    print(f"{'steps':>5}  {'max |w_single - w_mirrored|':>27}  {'max |w_single - w_0|':>20}")
    for n in steps:
        row = measure(n, args.learning_rate, train_size=32 * max(steps), seed=args.seed)
        print(f"{row['steps']:>5}  {row['max_difference']:>27.2e}  {row['max_movement']:>20.4f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
