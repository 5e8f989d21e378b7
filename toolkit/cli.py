"""The ``toolkit`` command: ``toolkit run [NAME ...] [--out exports/] [--full]``."""

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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from toolkit.jobs import discover, run_all  # heavy imports only once arguments parse

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
