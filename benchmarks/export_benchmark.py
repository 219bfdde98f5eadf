"""Benchmark: every export format of the course's fused classifiers: size on disk, single-example latency
(p50 / p95) and parity with the Keras model.

    python benchmarks/export_benchmark.py                      # AV-MNIST (offline fixture) and moving toys
    python benchmarks/export_benchmark.py --models avmnist --json export.json
    python benchmarks/export_benchmark.py --smoke              # tiny data, a few repeats: a quick check

For each model it trains a fused classifier (`build_fusion_classifier` + `fit_classifier`), exports it with
`mmkeras.export.export_all` (SavedModel, TFLite float32 / float16 / int8, ONNX) plus int8 TFLite files of the
model magnitude-pruned to 25 % and 50 % sparsity (post-training, no fine-tuning), and prints per format: the
file size, its gzip size, p50 / p95 latency of one example (1 thread for TFLite and onnxruntime; TensorFlow
picks its own threads for Keras and the SavedModel; `keras_eager` is `model(x)` called eagerly), the largest
absolute logit difference from Keras on the test split, the top-1 agreement, and the test accuracy. The
moving-toys model is built the default way, its preprocessing beside it (`model.preprocessor`: tokenizer and
log-mel): its TFLite and ONNX files are the model's numeric graph, timed without the preprocessor (the
`preprocessor` row); the SavedModel and Keras rows include it. The AV-MNIST model keeps its log-mel inside
(`preprocessor=None`), the hardest case for the converters. AV-MNIST here is the offline
fixture (`prepare_fixture`), so its accuracy says nothing about real AV-MNIST: parity, size and latency do.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
PRUNING_SPARSITIES = (0.25, 0.5)


def load_model_and_data(name: str, smoke: bool, data_dir: pathlib.Path, epochs: int):
    import keras

    from mmkeras.models import build_fusion_classifier
    from mmkeras.training import fit_classifier

    if name == "avmnist":
        from mmkeras.data.avmnist import AVMNIST_SCHEMA, load_avmnist, prepare_fixture

        cache = prepare_fixture(data_dir, fixture_images=(240, 60) if smoke else (1200, 300), progress=False)
        splits, schema = load_avmnist(cache, degrade=True), AVMNIST_SCHEMA
        keras.utils.set_random_seed(0)
        model = build_fusion_classifier(splits["train"], preprocessor=None)  # the log-mel inside, as in notebook 14
    else:
        from mmkeras.data import load_splits
        from mmkeras.data.synthetic import SCHEMA

        splits, schema = load_splits(*((64, 16, 60) if smoke else (1000, 200, 300))), SCHEMA
        keras.utils.set_random_seed(0)
        model = build_fusion_classifier(["text", "image", "audio", "video"])
    result = fit_classifier(model, splits["train"], splits["val"], epochs=1 if smoke else epochs, batch_size=32)
    return model, splits, schema, result.seconds


def benchmark(name: str, smoke: bool, epochs: int, repeats: int, out_dir: pathlib.Path) -> dict:
    import numpy as np

    from mmkeras import export

    model, splits, schema, train_seconds = load_model_and_data(name, smoke, out_dir / "data", epochs)
    test = splits["test"]
    labels = np.asarray(test.labels[export.head_names(model)[0]])
    paths = export.export_all(model, out_dir / name, schema=schema, examples=test)
    paths_pruned, pruned_kernels = {}, 0
    for sparsity in PRUNING_SPARSITIES:  # post-training magnitude pruning, then int8, no fine-tuning
        pruned = export.copy_model(model)
        pruned_kernels = len(export.prune_weights(pruned, sparsity))
        key = f"pruned{round(100 * sparsity)}_int8"
        paths_pruned[key] = export.export_tflite(export.split_preprocessing(pruned).core,
                                                 out_dir / name / f"model_{key}.tflite", "int8")
    report = export.parity_report(model, paths, test)
    split = export.split_preprocessing(model)
    core_features = split.core_inputs(test.features)
    head = export.head_names(model)[0]
    reference = export.keras_logits(model, test.features)[head]
    for key, path in paths_pruned.items():  # against the unpruned Keras model: what pruning costs
        report[key] = export.compare_logits(reference, export.TFLiteRunner(path)(core_features)[head])

    def one(features, i=0):
        return {k: np.asarray(v)[i:i + 1] for k, v in features.items()}

    rows = {}
    keras_example = one(test.features)
    rows["keras_eager"] = {"bytes": None, "gzip_bytes": None,
                     **export.latency_ms(lambda x: export.keras_logits(model, x), keras_example, repeats),
                     "accuracy": float((reference.argmax(-1) == labels).mean())}
    for fmt, path in {**{k: v for k, v in paths.items() if k != "preprocessor"}, **paths_pruned}.items():
        runner = export.load_runner(fmt if fmt in export.FORMATS else "tflite_int8", path)
        features = test.features if fmt == "saved_model" else core_features
        logits = runner(features)[export.head_names(model)[0]]
        rows[fmt] = {"bytes": export.size_on_disk(path),
                     "gzip_bytes": export.gzip_size(path) if pathlib.Path(path).is_file() else None,
                     **export.latency_ms(runner, one(features), repeats),
                     "accuracy": float((logits.argmax(-1) == labels).mean()), **report[fmt]}
    if "preprocessor" in paths:
        rows["preprocessor"] = {"bytes": export.size_on_disk(paths["preprocessor"]), "gzip_bytes": None,
                                **export.latency_ms(lambda x: split.core_inputs(x), one(test.features), repeats)}
    return {"model": name, "params": int(model.count_params()), "train_seconds": round(train_seconds, 1),
            "test_examples": len(test), "pruned_kernels": pruned_kernels, "formats": rows}


def print_table(result: dict) -> None:
    print(f"\n== {result['model']}: {result['params']:,} parameters, trained in {result['train_seconds']} s, "
          f"parity on {result['test_examples']} test examples ==")
    print(f"{'format':<16}{'size KB':>10}{'gzip KB':>10}{'p50 ms':>9}{'p95 ms':>9}{'max|dz|':>12}{'top-1 agr':>11}"
          f"{'accuracy':>10}  check")
    for fmt, row in result["formats"].items():
        size = f"{row['bytes'] / 1024:.1f}" if row["bytes"] else "-"
        gz = f"{row['gzip_bytes'] / 1024:.1f}" if row.get("gzip_bytes") else "-"
        diff = f"{row['max_abs_diff']:.2e}" if "max_abs_diff" in row else "-"
        agree = f"{100 * row['top1_agreement']:.1f} %" if "top1_agreement" in row else "-"
        acc = f"{row['accuracy']:.3f}" if "accuracy" in row else "-"
        check = {True: "pass", False: "FAIL"}.get(row.get("passed"), "")
        print(f"{fmt:<16}{size:>10}{gz:>10}{row['p50']:>9.2f}{row['p95']:>9.2f}{diff:>12}{agree:>11}{acc:>10}  {check}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Size, latency and parity of every export format.")
    parser.add_argument("--models", nargs="+", choices=("avmnist", "toys"), default=["avmnist", "toys"])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=100, help="timed single-example calls per format")
    parser.add_argument("--smoke", action="store_true", help="tiny data, 1 epoch, 10 repeats")
    parser.add_argument("--json", type=pathlib.Path, default=None, help="also write the results here")
    parser.add_argument("--out-dir", type=pathlib.Path, default=None, help="keep the exports here")
    args = parser.parse_args(argv)
    from mmkeras.export import environment

    repeats = 10 if args.smoke else args.repeats
    env = environment()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}; "
          + ", ".join(f"{k} {v}" for k, v in env.items() if k != "cpu_count"))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.out_dir or pathlib.Path(tmp)
        for name in args.models:
            results.append(benchmark(name, args.smoke, args.epochs, repeats, out_dir))
            print_table(results[-1])
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "repeats": repeats, "results": results}, indent=2))
        print(f"\nwrote {args.json}")
    failed = [(r["model"], f) for r in results for f, row in r["formats"].items() if row.get("passed") is False]
    if failed:
        print(f"parity FAILED: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
