"""Download, verify and extract one of the course's real datasets.

Usage (from the repository root):

    python data_scripts/download.py --list
    python data_scripts/download.py fsdd
    python data_scripts/download.py fsdd --data-dir /data/mmkeras --mirror https://mirror.example.org/mmkeras
    python data_scripts/download.py --print-hash ~/Downloads/master.zip

The data directory defaults to `$MMKERAS_DATA_DIR`, else `~/.mmkeras/datasets`; the mirror to
`$MMKERAS_MIRROR`. Every download is checked against the sha256 in `mmkeras/data/registry.py`; see
`data_scripts/README.md` for the datasets, their licences and how to cite them.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

try:
    from mmkeras.data.download import DownloadError, download, file_sha256, resolve_data_dir
    from mmkeras.data.registry import REGISTRY, get_spec
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from mmkeras.data.download import DownloadError, download, file_sha256, resolve_data_dir
    from mmkeras.data.registry import REGISTRY, get_spec


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="data_scripts/download.py",
        description="Download a registered dataset, verify its sha256 and extract it safely.",
    )
    parser.add_argument("name", nargs="?", help=f"dataset to download, one of: {', '.join(sorted(REGISTRY))}")
    parser.add_argument("--list", action="store_true", help="list the registered datasets and exit")
    parser.add_argument("--print-hash", metavar="FILE", help="print the sha256 and size of FILE and exit")
    parser.add_argument("--data-dir", help="data directory (default: $MMKERAS_DATA_DIR, ~/.mmkeras/datasets)")
    parser.add_argument("--mirror", help="base URL serving the same file names (default: $MMKERAS_MIRROR)")
    parser.add_argument("--timeout", type=float, default=30, help="seconds a stalled connection may wait")
    parser.add_argument("--retries", type=int, default=3, help="retries on connection errors, timeouts, 5xx")
    parser.add_argument("--no-extract", action="store_true", help="keep the archive, do not extract it")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--allow-unverified",
        action="store_true",
        help="download a dataset whose sha256 is not recorded yet (prints the hash to record)",
    )
    return parser


def list_datasets() -> str:
    """Return one line per registered dataset: name, size, licence, verification status, URL."""
    lines = []
    for name in sorted(REGISTRY):
        spec = REGISTRY[name]
        size = f"{spec.size_bytes / 2**20:.1f} MiB" if spec.size_bytes else "size unknown"
        checked = "sha256 recorded" if spec.sha256 else "sha256 NOT recorded"
        lines.append(f"{name:8s} {size:>13s}  {spec.license:14s} {checked:20s} {spec.url}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 on success, 1 on a download error, 2 on bad usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print(list_datasets())
        return 0
    if args.print_hash:
        path = pathlib.Path(args.print_hash).expanduser()
        if not path.is_file():
            parser.error(f"--print-hash needs an existing file. Received: {args.print_hash!r}")
        print(f"{file_sha256(path)}  {path.stat().st_size}  {path}")
        return 0
    if not args.name:
        parser.error("give a dataset NAME, or --list, or --print-hash FILE")
    try:
        spec = get_spec(args.name)
        path = download(
            spec,
            data_dir=args.data_dir,
            base_url=args.mirror,
            timeout=args.timeout,
            retries=args.retries,
            progress=not args.quiet,
            extract=not args.no_extract,
            allow_unverified=args.allow_unverified,
        )
    except (DownloadError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{spec.name}: verified and ready at {path}")
    print(f"(data directory: {resolve_data_dir(args.data_dir)}; licence: {spec.license})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
