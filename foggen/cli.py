"""``foggen``: the parser (one module per subcommand) and the one error -> exit-code funnel.

Logs and progress bars go to stderr; with ``--json`` stdout carries JSON only.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from importlib import metadata

from foggen import commands
from foggen.exits import exit_for

log = logging.getLogger("foggen")


def _version() -> str:
    try:
        return metadata.version("foggen-edge")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="foggen",
        description="Answer multiple-choice questions on-device with a self-aware GGUF model; "
        "escalate to the cloud when its confidence is below tau.",
    )
    parser.add_argument("--version", action="version", version=f"foggen-edge {_version()}")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("FOGGEN_LOG_LEVEL", "WARNING"),
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level on stderr (env FOGGEN_LOG_LEVEL; default: WARNING)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands.ALL:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (Exception, KeyboardInterrupt) as exc:
        row = exit_for(exc)
        if row is None:
            raise
        log.debug("exit %d", row.code, exc_info=True)
        if row.prefix is not None:
            print(f"foggen: {row.prefix}{exc}", file=sys.stderr)
        return row.code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
