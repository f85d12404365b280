"""One module per ``foggen`` subcommand, each with ``register(subparsers)``.

A module imports only argparse and the (plain dataclass) configs its flags come from at
registration; the packages that do the work load inside its handler.
"""

from __future__ import annotations

from foggen.commands import (
    ask,
    bench,
    calibrator,
    chain,
    convert,
    log,
    model,
    outbox,
    quantize,
    serve,
    tau,
    train,
    verify,
)

ALL = (ask, model, convert, quantize, verify, outbox, bench, tau, serve, log, calibrator, train,
       chain)  # fmt: skip
