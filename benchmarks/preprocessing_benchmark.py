"""Benchmark: the same fused classifier with its preprocessing inside the model graph or beside it.

    python benchmarks/preprocessing_benchmark.py            # 2000 training clips, 5 epochs, 3 seeds
    python benchmarks/preprocessing_benchmark.py --smoke    # a few seconds

`build_fusion_classifier(train)` builds the keras-hub split (a `MultimodalPreprocessor` mapped in `tf.data`
by `fit`/`evaluate`/`predict`, numeric encoders); `preprocessor=None` puts the tokenizer and the log-mel front end
inside the encoders instead. For each seed both are trained from the same seed on the same batches; the script
prints the test accuracy, the seconds per epoch after the first (tracing excluded) and the evaluation time, and
the largest logit difference between the two once the split model's weights are copied into the in-graph one
(the two compute the same function). Every number is measured in this process; nothing is stored.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def run(preprocessor, train, test, seed: int, epochs: int) -> dict:
    import keras

    from mmkeras.data import to_dataset
    from mmkeras.models import build_fusion_classifier

    keras.utils.set_random_seed(seed)
    model = build_fusion_classifier(train, preprocessor=preprocessor)
    model.compile()
    data = to_dataset(train, shuffle=True, seed=seed)
    model.fit(data, epochs=1, verbose=0)  # tracing and the first pass
    start = time.perf_counter()
    model.fit(data, epochs=epochs - 1, verbose=0)
    per_epoch = (time.perf_counter() - start) / (epochs - 1)
    start = time.perf_counter()
    accuracy = model.evaluate(to_dataset(test), verbose=0)[1]
    return {"model": model, "accuracy": accuracy, "epoch_s": per_epoch, "evaluate_s": time.perf_counter() - start}


def main(argv=None) -> None:
    import numpy as np

    from mmkeras.data import make_synthetic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny data, 2 epochs, 1 seed")
    args = parser.parse_args(argv)
    n_train, n_test, epochs, seeds = (200, 100, 2, [0]) if args.smoke else (2000, 500, 5, [0, 1, 2])
    train, test = make_synthetic(n_train, seed=100), make_synthetic(n_test, seed=101)
    rows = {"beside the model (default)": [], "inside the model": []}
    for seed in seeds:
        split = run("auto", train, test, seed, epochs)
        whole = run(None, train, test, seed, epochs)
        rows["beside the model (default)"].append(split)
        rows["inside the model"].append(whole)
        x = {m: test.features[m][:64] for m in test.features}
        whole["model"].set_weights(split["model"].get_weights())
        gap = np.abs(split["model"].predict(x, verbose=0) - whole["model"].predict(x, verbose=0)).max()
        print(f"seed {seed}: same weights, max |logit difference| {gap:.2e}", flush=True)
    print(f"\n{n_train} training samples (4 modalities), {epochs} epochs, seeds {seeds}; mean (min-max) over seeds")
    print("| preprocessing | test accuracy | s per epoch (after the first) | evaluate s |")
    print("|---|---|---|---|")
    for name, results in rows.items():
        cells = []
        for key, digits in (("accuracy", 3), ("epoch_s", 2), ("evaluate_s", 2)):
            values = [r[key] for r in results]
            cells.append(f"{statistics.mean(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
