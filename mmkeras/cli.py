"""The `mmkeras` command: `mmkeras quickstart`, `mmkeras download`, `mmkeras datasets`."""

from __future__ import annotations

import argparse
import os
import sys


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmkeras", description="Multimodal deep learning with Keras 3: the course.")
    commands = parser.add_subparsers(dest="command", required=True)
    quick = commands.add_parser("quickstart", help="train each modality alone and all four fused; compare")
    quick.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    quick.add_argument("--out-dir", default="outputs", help="folder for the bar chart (default: outputs)")
    quick.add_argument("--no-plot", action="store_true", help="do not save the bar chart")
    quick.add_argument("--seed", type=int, default=0, help="seed of data and models (default: 0)")
    quick.add_argument("--epochs", type=_positive_int, help="epochs per model (default: 8, 1 in smoke mode)")
    quick.add_argument("--train-size", type=_positive_int, help="training samples (default: 3000)")
    quick.add_argument("--quiet", action="store_true", help="no progress bar")
    download = commands.add_parser("download", help="download, verify and extract a registered real dataset")
    download.add_argument("name", help="dataset name (see `mmkeras datasets`)")
    download.add_argument("--data-dir", help="where datasets live (default: $MMKERAS_DATA_DIR or ~/.mmkeras/datasets)")
    download.add_argument("--mirror", help="base URL of a mirror serving the same file names")
    commands.add_parser("datasets", help="list the registered real datasets")
    return parser


def main(argv=None) -> int:
    """Entry point of the `mmkeras` console script and of `python -m mmkeras`."""
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's C++ start-up chatter
    if args.command == "quickstart":
        return _quickstart(args)
    if args.command == "datasets":
        from mmkeras.data.registry import REGISTRY

        for spec in REGISTRY.values():
            print(f"{spec.name:<8} {spec.description}")
        return 0
    from mmkeras.data.download import DownloadError, download

    try:
        path = download(args.name, data_dir=args.data_dir, base_url=args.mirror)
    except (ValueError, DownloadError) as error:
        print(f"mmkeras download: error: {error}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _quickstart(args) -> int:
    import dataclasses

    from mmkeras.config import is_smoke
    from mmkeras.quickstart import QuickstartConfig, format_table, run_quickstart, save_outputs

    overrides = {k: v for k, v in (("epochs", args.epochs), ("train_size", args.train_size)) if v is not None}
    try:
        smoke = is_smoke()
        base = QuickstartConfig.smoke(args.seed) if smoke else QuickstartConfig(seed=args.seed)
        config = dataclasses.replace(base, **overrides)
    except ValueError as error:
        print(f"mmkeras quickstart: error: {error}", file=sys.stderr)
        return 2
    print(f"mmkeras quickstart: {config.train_size} training samples, {config.epochs} epochs per model, "
          f"seed {config.seed}{' (smoke mode)' if smoke else ''}")
    results = run_quickstart(config, progress=not args.quiet)
    print(format_table(results))
    try:
        written = save_outputs(results, None if args.no_plot else args.out_dir, args.json)
    except (ValueError, OSError) as error:
        print(f"mmkeras quickstart: error: {error}", file=sys.stderr)
        return 2
    for kind, path in written.items():
        print(f"{kind} written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
