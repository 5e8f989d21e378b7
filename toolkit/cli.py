"""The ``toolkit`` command: ``toolkit run``, ``toolkit serve``, ``toolkit report`` and ``toolkit info``.

Arguments are parsed before anything heavy is imported: ``toolkit --help``, ``--version``
and ``toolkit run --list`` load no torch, and ``toolkit serve`` loads only the serving side.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from toolkit._version import __version__

DESCRIPTION = (
    "Fit, export and validate the pipelines in pipelines/ (toolkit run), serve exported models over HTTP "
    "(toolkit serve), rebuild the run's HTML report (toolkit report), or say how toolkit runs on this machine "
    "(toolkit info)."
)
# What the [serve] extras bring (pyproject.toml), checked before the server is imported.
SERVE_MODULES = ("starlette", "uvicorn", "prometheus_client", "grpc", "grpc_tools")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def default_pipelines_dir() -> Path:
    """``./pipelines`` when it exists, else the one beside the package (editable installs)."""
    here = Path.cwd() / "pipelines"
    return here if here.is_dir() else Path(__file__).resolve().parents[1] / "pipelines"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toolkit", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"toolkit {__version__}")
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="{run,serve,report,info}",
        help="toolkit COMMAND --help for a command's options",
    )
    run = commands.add_parser(
        "run",
        help="run pipelines, export and validate their models",
        description="Run the pipelines in pipelines/ (all by default, in their quick setting): each fits a model and a "
        "baseline, exports the model to ONNX, validates the export under onnxruntime and prints its row as it "
        "finishes. "
        "Rows also go to <out>/results.json. Exit status: 0 when no row failed, 1 when one did, 130 on Ctrl-C.",
    )
    run.add_argument("names", nargs="*", metavar="NAME", help="pipelines to run (default: all; see --list)")
    run.add_argument(
        "--out", type=Path, default=Path("exports"), help="export root, one folder per pipeline (default: exports/)"
    )
    run.add_argument(
        "--pipelines",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of pipeline files (default: ./pipelines, else the one beside the package)",
    )
    run.add_argument(
        "--full",
        action="store_true",
        help="the longer, full-size settings (each pipeline's docstring gives them), instead of the quick ones",
    )
    run.add_argument(
        "--list", action="store_true", help="list the pipelines, what each does and its quick / full time, and exit"
    )
    run.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="pipelines run at a time, each in a worker process (default: as many as the CPU budget holds at "
        "--threads each and the available memory at 1.5 GB each, so 2 on 2 CPUs; 1: one after the other in this "
        "process, with progress bars)",
    )
    run.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per pipeline (default: 1; these small nets gain little from a second thread alone "
        "and lose most of their speed to other work sharing the cores)",
    )
    serve = commands.add_parser(
        "serve",
        help="serve exported models over HTTP (Open Inference Protocol V2)",
        description="Serve every model under DIRECTORY (or one .onnx file) over HTTP: the Open Inference Protocol "
        "(V2) at /v2/models/NAME/infer, DataFrame records at /v2/models/NAME/predict, Prometheus metrics at /metrics. "
        'Needs the [serve] extras: pip install "toolkit[serve]".',
    )
    serve.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=Path("exports"),
        metavar="DIRECTORY",
        help="folder of models: export folders, folders of a model.onnx made elsewhere, Triton's <model>/<n>/ "
        "version folders (default: exports/); or one .onnx file",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0 for all interfaces)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    serve.add_argument(
        "--workers", type=int, default=1, help="server processes, each with its own onnxruntime sessions (default: 1)"
    )
    serve.add_argument(
        "--threads",
        dest="intra_op_num_threads",
        type=int,
        default=None,
        help="onnxruntime intra-op threads per session (default: the CPU budget, shared among the workers)",
    )
    serve.add_argument("--max-rows", type=int, default=10_000, help="rows a request may send (default: 10000)")
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=16 * 2**20,
        help="request bodies over this many bytes get 413 (default: 16 MiB)",
    )
    serve.add_argument(
        "--max-batch-size",
        type=int,
        default=32,
        help="adaptive batching: stack concurrent requests for a model into one run of at most this many rows "
        "(default: 32; 0: off; a model.json's serving.max_batch_size overrides it for that model; graphs whose "
        "answers would change with the batch size are never batched)",
    )
    serve.add_argument(
        "--max-queue-delay-us",
        type=int,
        default=0,
        help="how long a batch's first request waits for others, in microseconds (default: 0: only those queued)",
    )
    serve.add_argument(
        "--max-queue-size",
        type=int,
        default=1024,
        help="requests a model's batching queue holds; beyond, 503 with Retry-After (default: 1024)",
    )
    serve.add_argument(
        "--model-control-mode",
        choices=("none", "poll", "explicit"),
        default="poll",
        help="as Triton's: none serves the models found at start; poll (default) also serves exports swapped in, "
        "versions and folders added, without a restart; explicit serves what POST /v2/repository/models/NAME/load "
        "and /unload say (refused with 403 in the other modes)",
    )
    serve.add_argument(
        "--grpc-port",
        type=int,
        default=None,
        help="also serve the protocol over gRPC (inference.GRPCInferenceService, as Triton, KServe and MLServer) "
        "on this port, on --host, from the same process and models (default: HTTP only)",
    )
    serve.set_defaults(grpc_host="127.0.0.1")  # gRPC listens where HTTP does: serve() sets it to --host
    serve.add_argument(
        "--drain-seconds",
        type=int,
        default=30,
        help="on SIGTERM, how long gRPC calls in flight may take to finish (HTTP's are drained by uvicorn; "
        "default: 30)",
    )
    serve.add_argument(
        "--model-name",
        default=None,
        help="the name of a model served alone (DIRECTORY is one export folder or .onnx file; default: its "
        "folder's name), as KServe passes an InferenceService's name",
    )
    serve.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="uvicorn's log level; access lines are logged at info (default: info)",
    )
    serve.add_argument(
        "--quiet", action="store_true", help="print only warnings and errors: no start-up listing, no access lines"
    )
    report = commands.add_parser(
        "report",
        help="rebuild exports/report.html from the export folders, without refitting",
        description="Write <DIR>/report.html: the results table of the last toolkit run into DIR, then each "
        "pipeline's details and figures, images embedded (no network needed to view it).",
    )
    report.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=Path("exports"),
        metavar="DIR",
        help="the export root (default: exports/)",
    )
    commands.add_parser(
        "info",
        help="versions, devices, and which pass each family takes here (toolkit.show_config())",
        description="Print toolkit's version and its libraries', whether torch sees a CUDA device, onnxruntime's "
        "providers, and which pass GaussianMixture and ARForecaster take on this machine (compiled kernel or "
        "fallback).",
    )
    return parser


def serve(args: argparse.Namespace) -> int:
    missing = [name for name in SERVE_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f'toolkit serve needs the [serve] extras ({", ".join(missing)} missing): pip install "toolkit[serve]"',
            file=sys.stderr,
        )
        return 2
    import dataclasses

    from toolkit.serving._repository import is_one_model
    from toolkit.serving._server import ServerSettings, serve

    if not (args.directory.is_dir() or (args.directory.is_file() and args.directory.suffix == ".onnx")):
        print(f"toolkit: {args.directory} is neither a folder of models nor an .onnx file to serve", file=sys.stderr)
        return 2
    try:
        is_one_model(args.directory, args.model_name)
    except ValueError as error:
        print(f"toolkit: --model-name: {error}", file=sys.stderr)
        return 2
    settings = ServerSettings(**{field.name: getattr(args, field.name) for field in dataclasses.fields(ServerSettings)})
    serve(
        args.directory,
        host=args.host,
        port=args.port,
        workers=args.workers,
        settings=settings,
        log_level="warning" if args.quiet else args.log_level,
        announce=not args.quiet,
    )
    return 0


def list_pipelines(directory: Path) -> str:
    """One line per pipeline: name, quick / full time, what it does (files are not imported)."""
    from toolkit.jobs import describe, discover

    infos = [describe(path) for path in discover(directory).values()]
    width = max((len(info.name) for info in infos), default=0)

    def seconds(info, setting: str) -> str:
        return f"~{info.seconds[setting]:.0f} s" if setting in info.seconds else "?"

    return "\n".join(
        f"{info.name.ljust(width)}  quick {seconds(info, 'quick'):>7}  full {seconds(info, 'full'):>7}  {info.summary}"
        for info in infos
    )


def run(args: argparse.Namespace) -> int:
    directory = args.pipelines or default_pipelines_dir()
    if not directory.is_dir():
        print(f"toolkit: no pipelines folder at {directory}", file=sys.stderr)
        return 2
    if args.list:
        print(list_pipelines(directory))
        return 0
    from toolkit.jobs._runner import run_all  # torch, onnx: only once the arguments parse

    try:
        return run_all(args.names, directory, args.out, full=args.full, jobs=args.jobs, threads=args.threads).exit_code
    except ValueError as error:
        print(f"toolkit: {error}", file=sys.stderr)
        return 2


def report(args: argparse.Namespace) -> int:
    from toolkit.jobs._report import ReportError, build_report

    try:
        print(build_report(args.directory))
    except ReportError as error:
        print(f"toolkit report: {error}", file=sys.stderr)
        return 2
    return 0


def info(args: argparse.Namespace) -> int:
    from toolkit._config import show_config

    show_config()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return {"run": run, "serve": serve, "report": report, "info": info}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
