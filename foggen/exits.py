"""The one table from errors to exit codes and messages, for every ``foggen`` command.

0 ok, 1 some inputs failed (or the outbox cannot be used), 2 bad usage, settings or input,
3 a model (or converter) problem.
Error classes are named, not imported: a command never loads a package just to map its errors.
"""

from __future__ import annotations

import logging
import sys
from typing import NamedTuple

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_MODEL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130

log = logging.getLogger("foggen")


class Exit(NamedTuple):
    error: str  # "package.module:Class"; the first row the exception is an instance of wins
    code: int
    prefix: str | None  # message prefix; None: no message


TABLE: tuple[Exit, ...] = (
    Exit("edge_runtime.errors:InvalidQuestionError", EXIT_USAGE, "invalid question: "),
    Exit("edge_runtime.errors:ConfigError", EXIT_USAGE, "error: "),
    Exit("edge_runtime.errors:UnknownModelError", EXIT_USAGE, "error: "),
    Exit("edge_runtime.errors:EdgeRuntimeError", EXIT_MODEL, "error: "),
    Exit("converter.errors:MissingExtraError", EXIT_USAGE, ""),
    Exit("converter.errors:ConverterError", EXIT_MODEL, "error: "),
    Exit("cloud_client.errors:OutboxError", EXIT_SOME_FAILED, "error: "),  # a broken outbox file
    Exit("cloud_client.errors:CloudError", EXIT_USAGE, "error: "),  # only settings get here
    Exit("benchmarks.errors:BenchmarkError", EXIT_USAGE, "error: "),
    Exit("builtins:ValueError", EXIT_USAGE, "error: "),  # bad settings: SettingError, --dtype
    Exit("builtins:BrokenPipeError", EXIT_OK, None),  # e.g. `foggen ask ... | head`
    Exit("builtins:OSError", EXIT_USAGE, "error: "),  # e.g. --input names a missing file
    Exit("builtins:KeyboardInterrupt", EXIT_INTERRUPTED, None),
)


def exit_for(exc: BaseException) -> Exit | None:
    """The table's row for ``exc`` (None: not ours to map, let it raise). An error class can
    only have been raised if its module is loaded, so only loaded modules are looked at."""
    for row in TABLE:
        module, name = row.error.split(":")
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(exc, getattr(loaded, name)):
            return row
    return None
