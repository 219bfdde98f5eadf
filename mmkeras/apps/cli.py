"""The `mmkeras` command: `quickstart`, `compare-fusions`, `bench-generative`, `download`, `prepare`, `pretrain`,
`distribute` and `serve`.

`data_scripts/download.py` is this same `download` command (it calls `main(["download", ...])`), so the two
take the same flags and return the same exit codes:

    0  done;   1  the download, the checksum or the extraction failed;   2  bad usage (unknown dataset, bad flag).

Only `quickstart`, `compare-fusions` and `bench-generative` import TensorFlow; `--help` and `download` never do.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _number_type(convert, description: str, accept):
    """An argparse `type=` that converts with `convert` and refuses values that `accept` rejects."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {description}, received {text!r}")
        return value

    return parse


_positive_int = _number_type(int, "a positive integer", lambda v: v > 0)
_positive_float = _number_type(float, "a positive number", lambda v: v > 0)
_non_negative_int = _number_type(int, "an integer >= 0", lambda v: v >= 0)


def _seed_list(text: str) -> list[int]:
    """`--seeds 0,1,2` as `[0, 1, 2]`: comma-separated, distinct integers >= 0, at least one."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected comma-separated distinct integers >= 0 such as 0,1,2, "
                                         f"received {text!r}")
    return seeds


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `mmkeras download` (and of `data_scripts/download.py`, which is the same command)."""
    parser.add_argument("name", nargs="?", help="dataset to download (see --list)")
    parser.add_argument("--list", action="store_true", help="list the registered datasets and exit")
    parser.add_argument("--print-hash", metavar="FILE", help="print the sha256 and size of FILE and exit")
    parser.add_argument("--data-dir", help="data directory (default: $MMKERAS_DATA_DIR, else ~/.mmkeras/datasets)")
    parser.add_argument("--mirror", help="base URL serving the same file names (default: $MMKERAS_MIRROR)")
    parser.add_argument("--timeout", type=_positive_float, default=30.0,
                        help="seconds a stalled connection may wait (default: 30)")
    parser.add_argument("--deadline", type=_positive_float, default=None,
                        help="seconds the whole download may take, retries included (default: 15 minutes, "
                             "more for a large file)")
    parser.add_argument("--retries", type=_non_negative_int, default=3,
                        help="retries on connection errors, timeouts and HTTP 5xx (default: 3)")
    parser.add_argument("--no-extract", action="store_true", help="keep the archive, do not extract it")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--allow-unverified", action="store_true",
                        help="download a dataset whose sha256 is not recorded yet (prints the hash to record)")


def add_prepare_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `mmkeras prepare` (shared with `data_scripts/prepare_avmnist.py`)."""
    parser.add_argument("--data-dir", help="where downloads and the cache go (default: $MMKERAS_DATA_DIR, else "
                                           "~/.mmkeras/datasets)")
    parser.add_argument("--mirror", help="a mirror serving mnist.npz and v1.0.9.tar.gz (default: $MMKERAS_MIRROR)")
    parser.add_argument("--fixture", action="store_true",
                        help="prepare the offline stand-in instead (no network; not real data)")
    parser.add_argument("--fallback-to-fixture", action="store_true",
                        help="use the stand-in for a half that cannot be downloaded, and say so")
    parser.add_argument("--test-speakers", help="comma-separated held-out FSDD speakers (default: one, from --seed)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the pairing (default: 0)")
    parser.add_argument("--timeout", type=_positive_float, default=30.0, help="seconds per stalled read (default: 30)")
    parser.add_argument("--retries", type=_non_negative_int, default=3, help="retries per file (default: 3)")
    parser.add_argument("--force", action="store_true", help="prepare again even if the cache exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
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
    compare = commands.add_parser("compare-fusions", help="train every fusion strategy; compare accuracy, size, "
                                                          "time and robustness to a missing modality")
    compare.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    compare.add_argument("--out-dir", default="outputs", help="folder for the chart (default: outputs)")
    compare.add_argument("--no-plot", action="store_true", help="do not save the chart")
    compare.add_argument("--strategies", help="comma-separated names (default: every registered strategy)")
    compare.add_argument("--modality-dropout", type=float, default=0.0,
                         help="probability of hiding each modality while training (default: 0)")
    compare.add_argument("--epochs", type=_positive_int, help="epochs per model (default: 8, 1 in smoke mode)")
    compare.add_argument("--seeds", type=_seed_list, default=[0],
                         help="comma-separated distinct seeds, one full run each (new data, new weights); the table "
                              "gives mean (min-max) over them and ranks strategies from 3 seeds on, e.g. 0,1,2 "
                              "(three times as long) (default: 0, one run, unranked)")
    compare.add_argument("--quiet", action="store_true", help="no progress bar")
    bench = commands.add_parser("bench-generative", help="train the GAN, the CLIP-style dual encoder and the caption "
                                                         "model on the captioned scenes; print their numbers")
    bench.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    bench.add_argument("--parts", help="comma-separated parts: gan, retrieval, captioning (default: all)")
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    download = commands.add_parser("download", help="download, verify and extract a registered real dataset")
    add_download_arguments(download)
    dist = commands.add_parser("distribute", help="train one model with no strategy, MirroredStrategy (2 logical CPUs) "
                                                  "and MultiWorkerMirroredStrategy (workers on 127.0.0.1); compare")
    dist.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    dist.add_argument("--epochs", type=_positive_int, help="epochs (default: 3, 1 in smoke mode)")
    dist.add_argument("--train-size", type=_positive_int, help="training samples (default: 1024, 128 in smoke mode)")
    dist.add_argument("--workers", type=_positive_int, default=2, help="worker processes (default: 2)")
    dist.add_argument("--seeds", default="0",
                      help="comma-separated seeds; one comparison each, summarised per strategy (default: 0)")
    dist.add_argument("--timeout", type=_positive_float, default=900, help="seconds per run (default: 900)")
    prepare = commands.add_parser("prepare", help="download and prepare a real multimodal dataset (AV-MNIST)")
    prepare.add_argument("name", choices=["avmnist"], help="the dataset to prepare")
    add_prepare_arguments(prepare)
    pre = commands.add_parser("pretrain", help="pretrain the course's tiny BERT (masked LM) and CNN (pretext task) "
                                               "and save both as keras-hub presets in OUT_DIR (notebook 13)")
    pre.add_argument("out_dir", metavar="OUT_DIR", help="folder for the two preset folders (created if missing)")
    pre.add_argument("--mlm-epochs", type=_positive_int, help="masked-LM epochs (default: 8, 1 in smoke mode)")
    pre.add_argument("--pretext-epochs", type=_positive_int, help="pretext epochs (default: 5, 1 in smoke mode)")
    pre.add_argument("--pretext", choices=["caption_words", "rotation"], default="caption_words",
                     help="the CNN's pretext task (default: caption_words)")
    pre.add_argument("--corpus-size", type=_positive_int,
                     help="captions per dataset for the masked LM (default: 2500, 64 in smoke mode)")
    pre.add_argument("--pool-size", type=_positive_int,
                     help="unlabelled scenes for the pretext task (default: 3000, 64 in smoke mode)")
    pre.add_argument("--seed", type=int, default=0, help="seed of weights and masking (default: 0)")
    pre.add_argument("--json", metavar="PATH", help="write the preset paths and losses as JSON to PATH")
    serve = commands.add_parser(
        "serve", help="serve an exported model over HTTP (POST /predict, a web page at /)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve a model directory written by mmkeras.export.export_saved_model over HTTP.\n\n"
                    "A model directory is a program. \"TensorFlow models are programs\" (TensorFlow's SECURITY.md,\n"
                    "https://github.com/tensorflow/tensorflow/blob/master/SECURITY.md): its graph runs with your\n"
                    "rights and can read and write your files and use the network, partly as soon as it is\n"
                    "loaded, before any request. Serve only a model directory you exported yourself or otherwise\n"
                    "trust, and run any other one in a sandbox. The service has no authentication and no TLS: it\n"
                    "listens on 127.0.0.1 by default and warns on any other --host; put a reverse proxy with TLS\n"
                    "in front of it before other machines can reach it.",
        epilog="Answers: 400 not JSON, 408 body too slow, 413 body too large, 415 not application/json,\n"
               "422 bad inputs, 503 over the concurrency limit. Exit codes: 0 stopped, 2 bad usage or a model\n"
               "directory that cannot be served.")
    serve.add_argument("model_dir", metavar="MODEL_DIR",
                       help="a model directory written by mmkeras.export.export_saved_model (trusted: see above)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="interface to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 for all, "
                            "with a warning)")
    serve.add_argument("--port", type=_number_type(int, "a port from 0 to 65535", lambda v: 0 <= v <= 65535),
                       default=8000, help="TCP port (default: 8000; 0 picks a free one)")
    # the ranges of mmkeras.serving.server.LIMITS, checked here so that a bad value is a usage error (exit 2)
    # before TensorFlow is imported
    serve.add_argument("--max-body-mb", type=_number_type(float, "a number of MiB from 1/1024 (1 KiB) to 1024",
                                                          lambda v: 2**-10 <= v <= 2**10),
                       default=8.0, help="refuse request bodies larger than this many MiB with 413 (default: 8)")
    serve.add_argument("--max-batch", type=_number_type(int, "an integer from 1 to 4096", lambda v: 1 <= v <= 4096),
                       default=64, help="most examples in one request, 422 beyond (default: 64)")
    serve.add_argument("--limit-concurrency", default=64,
                       type=_number_type(int, "an integer from 1 to 10000", lambda v: 1 <= v <= 10_000),
                       help="open connections plus running requests before new requests get 503; beyond four times "
                            "as many, new connections are closed at once (default: 64)")
    serve.add_argument("--read-timeout", default=30.0,
                       type=_number_type(float, "a number of seconds in (0, 3600]", lambda v: 0 < v <= 3600),
                       help="seconds a client has to send its request head (else the connection closes) and its "
                            "body (else 408) (default: 30)")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       type=_number_type(str, "a host name, an IP address, '*.domain' or '*'",
                                         lambda v: v == "*" or (v.removeprefix("*.") != "" and all(
                                             c.isascii() and (c.isalnum() or c in "_.-:[]") for c in
                                             v.removeprefix("*.")))),
                       help="also answer requests whose Host header is NAME (repeatable; 127.0.0.1, localhost, "
                            "[::1] and --host are always answered, others get 400; '*' turns the check off)")
    serve.add_argument("--docs", action="store_true",
                       help="serve FastAPI's /docs, /redoc and /openapi.json (they load scripts from CDNs)")
    return parser


def list_datasets() -> str:
    """One line per registered dataset: name, size, licence, verification status, URL."""
    from mmkeras.data.registry import REGISTRY

    lines = []
    for name in sorted(REGISTRY):
        spec = REGISTRY[name]
        size = f"{spec.size_bytes / 2**20:.1f} MiB" if spec.size_bytes else "size unknown"
        checked = "sha256 recorded" if spec.sha256 else "sha256 NOT recorded"
        lines.append(f"{name:8s} {size:>13s}  {spec.license:14s} {checked:20s} {spec.url}")
    return "\n".join(lines)


def run_download(args, prog: str = "mmkeras download") -> int:
    """The `download` command on parsed arguments; returns the exit code."""
    from mmkeras.data.download import DownloadError, download, file_sha256, resolve_data_dir
    from mmkeras.data.registry import REGISTRY

    def usage(message: str) -> int:
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE

    if args.list:
        print(list_datasets())
        return EXIT_OK
    if args.print_hash:
        path = pathlib.Path(args.print_hash).expanduser()
        if not path.is_file():
            return usage(f"--print-hash needs an existing file. Received: {args.print_hash!r}")
        print(f"{file_sha256(path)}  {path.stat().st_size}  {path}")
        return EXIT_OK
    if not args.name:
        return usage("give a dataset NAME, or --list, or --print-hash FILE")
    if args.name not in REGISTRY:
        return usage(f"unknown dataset. Expected one of {sorted(REGISTRY)}. Received: {args.name!r}")
    spec = REGISTRY[args.name]
    try:
        path = download(spec, data_dir=args.data_dir, base_url=args.mirror, timeout=args.timeout,
                        retries=args.retries, progress=not args.quiet, extract=not args.no_extract,
                        allow_unverified=args.allow_unverified, deadline=args.deadline)
    except DownloadError as error:
        print(f"{prog}: failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    except ValueError as error:
        return usage(str(error))
    print(f"{spec.name}: verified and ready at {path}")
    print(f"(data directory: {resolve_data_dir(args.data_dir)}; licence: {spec.license})")
    return EXIT_OK


def main(argv=None) -> int:
    """Entry point of the `mmkeras` console script and of `python -m mmkeras`."""
    args = build_parser().parse_args(argv)
    if args.command == "download":
        return run_download(args)
    if args.command == "compare-fusions":
        return _compare_fusions(args)
    if args.command == "bench-generative":
        return _bench_generative(args)
    if args.command == "prepare":
        return run_prepare(args)
    if args.command == "distribute":
        return _distribute(args)
    if args.command == "serve":
        return run_serve(args)
    if args.command == "pretrain":
        return _pretrain(args)
    return _quickstart(args)


def _distribute(args) -> int:
    """`mmkeras distribute`: the same training under three strategies, one table (notebook 15)."""
    import json

    from mmkeras.config import is_smoke
    from mmkeras.distribute import (
        RunConfig,
        WorkerError,
        compare_strategies,
        format_strategies,
        per_replica_batch_size,
    )

    sizes = {"train_size": 128, "test_size": 64, "epochs": 1} if is_smoke() else {}
    sizes |= {k: v for k, v in (("epochs", args.epochs), ("train_size", args.train_size)) if v}
    try:
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise ValueError(f"--seeds must be comma-separated integers. Received: {args.seeds!r}") from None
        config = RunConfig(**sizes)
        for replicas in (config.num_devices, args.workers):  # before any training: B must split evenly
            per_replica_batch_size(config.global_batch_size, replicas)
        print(f"mmkeras distribute: {config.train_size} training samples, {config.epochs} epochs, global batch "
              f"{config.global_batch_size}, {args.workers} workers, seeds {seeds}"
              f"{' (smoke mode)' if is_smoke() else ''}")
        rows = compare_strategies(config, num_workers=args.workers, timeout=args.timeout, seeds=seeds)
    except ValueError as error:
        print(f"mmkeras distribute: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except WorkerError as error:
        print(f"mmkeras distribute: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(format_strategies(rows))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=2))
        print(f"results written to {args.json}")
    return EXIT_OK


def _pretrain(args, prog: str = "mmkeras pretrain") -> int:
    """`mmkeras pretrain OUT_DIR`: `mmkeras.pretrain.save_course_presets`, then how to load what it wrote."""
    import json

    from mmkeras.config import is_smoke

    out_dir = pathlib.Path(args.out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        print(f"{prog}: error: OUT_DIR must be a folder. Received: {args.out_dir!r} (an existing file)",
              file=sys.stderr)
        return EXIT_USAGE
    smoke = is_smoke()
    sizes = {"mlm_epochs": args.mlm_epochs or (1 if smoke else 8),
             "pretext_epochs": args.pretext_epochs or (1 if smoke else 5),
             "corpus_size": args.corpus_size or (64 if smoke else 2500),
             "pool_size": args.pool_size or (64 if smoke else 3000)}
    _quiet_tensorflow()
    from mmkeras.pretrain import save_course_presets

    print(f"{prog}: masked LM on {2 * sizes['corpus_size']} captions ({sizes['mlm_epochs']} epochs), "
          f"{args.pretext} pretext on {sizes['pool_size']} scenes ({sizes['pretext_epochs']} epochs)"
          f"{' (smoke mode)' if smoke else ''}")
    try:
        result = save_course_presets(out_dir, pretext=args.pretext, seed=args.seed, **sizes)
    except ValueError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"tiny BERT   {result['bert']}  (masked-LM loss {result['mlm_loss'][0]:.3f} -> {result['mlm_loss'][1]:.3f})")
    print(f"CNN         {result['cnn']}  (pretext loss {result['pretext_loss'][0]:.3f} -> "
          f"{result['pretext_loss'][1]:.3f})")
    print("Load them with keras_hub.models.BertBackbone.from_preset(PATH) and keras_hub.models.Backbone.from_preset("
          "PATH), or mmkeras.pretrain.load_text_classifier(PATH, num_classes).")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"results written to {args.json}")
    return EXIT_OK


def run_serve(args, prog: str = "mmkeras serve") -> int:
    """`mmkeras serve MODEL_DIR`: checks the model directory (without TensorFlow), loads it, runs uvicorn."""
    from mmkeras.export import read_metadata

    try:
        metadata = read_metadata(args.model_dir)
    except ValueError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    _quiet_tensorflow()
    import uvicorn

    from mmkeras.serving import exposure_warning, make_server_config

    try:  # loads the model after checking metadata.json against its signature
        config = make_server_config(args.model_dir, host=args.host, port=args.port,
                                    max_body_bytes=int(args.max_body_mb * 2**20), max_batch=args.max_batch,
                                    limit_concurrency=args.limit_concurrency, read_timeout=args.read_timeout,
                                    allowed_hosts=args.allowed_host, docs=args.docs)
    except ValueError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    warning = exposure_warning(args.host, args.allowed_host)
    if warning:
        print(f"{prog}: warning: {warning}", file=sys.stderr)
    inputs = ", ".join(f"{name} {spec['dtype']} {spec['shape']}" for name, spec in metadata["inputs"].items())
    where = "127.0.0.1" if args.host in ("0.0.0.0", "::") else f"[{args.host}]" if ":" in args.host else args.host
    print(f"{prog}: {metadata['model_name']} ({inputs}) -> {metadata['label']}; "
          f"open http://{where}:{args.port}/ (Ctrl-C stops)")
    uvicorn.Server(config).run()
    return EXIT_OK


def run_prepare(args, prog: str = "mmkeras prepare") -> int:
    """`mmkeras prepare avmnist`: download, verify, pair, cache; prints where the cache is and what it holds."""
    from mmkeras.data.avmnist import cache_info, prepare_avmnist, prepare_fixture
    from mmkeras.data.download import DownloadError

    speakers = [s for s in args.test_speakers.split(",") if s] if args.test_speakers else None
    common = {"test_speakers": speakers, "seed": args.seed, "progress": not args.quiet, "force": args.force}
    try:
        if args.fixture:
            path = prepare_fixture(args.data_dir, **common)
        else:
            path = prepare_avmnist(args.data_dir, base_url=args.mirror, timeout=args.timeout, retries=args.retries,
                                   fallback="fixture" if args.fallback_to_fixture else None, **common)
    except DownloadError as error:
        print(f"{prog}: failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    except ValueError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    info = cache_info(path)
    halves = ", ".join(f"{k}: {'real' if v['real'] else 'offline stand-in'} ({v['name']})"
                       for k, v in info["sources"].items())
    print(f"avmnist: ready at {path}")
    print(f"  pairs: {info['sizes']}; recordings: {info['recordings']}; test speakers: {info['test_speakers']}")
    print(f"  sources: {halves}")
    print("  load it with: mmkeras.data.avmnist.load_avmnist(path, degrade=True)")
    return EXIT_OK


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: fewer C++ notes
    import tensorflow as tf

    # New models in a row each trace their own predict function; TensorFlow's "retracing" warning about it is
    # expected here and not actionable, so these commands (applications, not a library) hide it.
    tf.get_logger().setLevel("ERROR")


def _write_outputs(results, out_dir, json_path, figure_name, make_figure) -> dict:
    from mmkeras.apps.quickstart import save_outputs

    return save_outputs(results, out_dir, json_path, figure_name=figure_name, make_figure=make_figure)


def _compare_fusions(args) -> int:
    import dataclasses

    _quiet_tensorflow()
    from mmkeras.apps.compare import compare_fusions, format_comparison, plot_comparison
    from mmkeras.apps.quickstart import QuickstartConfig
    from mmkeras.config import is_smoke

    names = [n.strip() for n in args.strategies.split(",")] if args.strategies else None
    try:
        smoke = is_smoke()
        config = QuickstartConfig.smoke() if smoke else QuickstartConfig()
        if args.epochs:
            config = dataclasses.replace(config, epochs=args.epochs)
        seeds = ", ".join(map(str, args.seeds))
        print(f"mmkeras compare-fusions: {config.train_size} training samples, {config.epochs} epochs per model, "
              f"seed{'s' if len(args.seeds) > 1 else ''} {seeds}{' (smoke mode)' if smoke else ''}")
        results = compare_fusions(names, config, args.modality_dropout, progress=not args.quiet, seeds=args.seeds)
    except ValueError as error:
        print(f"mmkeras compare-fusions: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(format_comparison(results))
    try:
        written = _write_outputs(results, None if args.no_plot else args.out_dir, args.json,
                                 "fusion_comparison.png", plot_comparison)
    except (ValueError, OSError) as error:
        print(f"mmkeras compare-fusions: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    for kind, path in written.items():
        print(f"{kind} written to {path}")
    return EXIT_OK


def _bench_generative(args) -> int:
    from mmkeras.apps.bench_generative import PARTS, bench_generative, format_bench
    from mmkeras.config import is_smoke

    parts = [p.strip() for p in args.parts.split(",")] if args.parts else list(PARTS)
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        print(f"mmkeras bench-generative: error: --parts must name parts from {list(PARTS)}. Received: {args.parts!r}",
              file=sys.stderr)
        return EXIT_USAGE
    if args.json and not pathlib.Path(args.json).resolve().parent.is_dir():  # fail now, not after the training
        print(f"mmkeras bench-generative: error: the folder of --json does not exist. Received: {args.json!r}",
              file=sys.stderr)
        return EXIT_USAGE
    _quiet_tensorflow()
    print(f"mmkeras bench-generative: {', '.join(parts)}{' (smoke mode)' if is_smoke() else ''}")
    results = bench_generative(parts, progress=not args.quiet)
    print(format_bench(results))
    for kind, path in _write_outputs(results, None, args.json, None, None).items():
        print(f"{kind} written to {path}")
    return EXIT_OK


def _quickstart(args) -> int:
    import dataclasses

    _quiet_tensorflow()
    from mmkeras.apps.quickstart import QuickstartConfig, format_table, run_quickstart, save_outputs
    from mmkeras.config import is_smoke

    overrides = {k: v for k, v in (("epochs", args.epochs), ("train_size", args.train_size)) if v is not None}
    try:
        smoke = is_smoke()
        base = QuickstartConfig.smoke(args.seed) if smoke else QuickstartConfig(seed=args.seed)
        config = dataclasses.replace(base, **overrides)
    except ValueError as error:
        print(f"mmkeras quickstart: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"mmkeras quickstart: {config.train_size} training samples, {config.epochs} epochs per model, "
          f"seed {config.seed}{' (smoke mode)' if smoke else ''}")
    results = run_quickstart(config, progress=not args.quiet)
    print(format_table(results))
    try:
        written = save_outputs(results, None if args.no_plot else args.out_dir, args.json)
    except (ValueError, OSError) as error:
        print(f"mmkeras quickstart: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    for kind, path in written.items():
        print(f"{kind} written to {path}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
