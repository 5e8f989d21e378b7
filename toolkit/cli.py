"""The ``toolkit`` command: ``toolkit run [NAME ...] [--out exports/] [--full]`` and
``toolkit serve [exports/] [--host 127.0.0.1] [--port 8000]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def default_pipelines_dir() -> Path:
    """``./pipelines`` when it exists, else the one beside the package (editable installs)."""
    here = Path.cwd() / "pipelines"
    return here if here.is_dir() else Path(__file__).resolve().parents[1] / "pipelines"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toolkit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run pipelines, export and validate their models")
    run.add_argument("names", nargs="*", help="pipelines to run (default: all)")
    run.add_argument("--out", type=Path, default=Path("exports"), help="export root (default: exports/)")
    run.add_argument("--pipelines", type=Path, default=None, help="folder of pipeline files")
    run.add_argument("--full", action="store_true", help="full-size runs instead of the quick defaults")
    run.add_argument("--list", action="store_true", help="list the pipelines and exit")
    serve = commands.add_parser("serve", help="serve exported models over HTTP (Open Inference Protocol V2)")
    serve.add_argument("directory", nargs="?", type=Path, default=Path("exports"), help="folder of export folders (default: exports/)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="server processes, each with its own sessions")
    serve.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads per session")
    serve.add_argument("--max-rows", type=int, default=10_000, help="rows a request may send")
    serve.add_argument("--max-body-bytes", type=int, default=16 * 2**20, help="larger request bodies get 413")
    return parser


def serve(args: argparse.Namespace) -> int:
    from toolkit.serving import ServerSettings, serve

    if not args.directory.is_dir():
        print(f"toolkit: no folder {args.directory} to serve", file=sys.stderr)
        return 2
    settings = ServerSettings(max_rows=args.max_rows, max_body_bytes=args.max_body_bytes, intra_op_num_threads=args.threads)
    serve(args.directory, host=args.host, port=args.port, workers=args.workers, settings=settings)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    from toolkit.jobs import (  # heavy imports only once arguments parse
        discover,
        run_all,
    )

    directory = args.pipelines or default_pipelines_dir()
    if not directory.is_dir():
        print(f"toolkit: no pipelines folder at {directory}", file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(discover(directory)))
        return 0
    try:
        outcomes = run_all(args.names, directory, args.out, full=args.full)
    except ValueError as error:
        print(f"toolkit: {error}", file=sys.stderr)
        return 2
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
