"""``foggen calibrator fit``: fit the model's calibrator on the calib split, write it out."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edge_runtime.config import RuntimeConfig
from foggen.commands.common import runtime_config
from foggen.exits import EXIT_OK
from foggen.flags import add_flags


def register(commands: Any) -> None:
    calibrator = commands.add_parser(
        "calibrator", help="fit the calibrator behind --signal calibrated"
    )
    actions = calibrator.add_subparsers(dest="calibrator_command", required=True, metavar="ACTION")
    fit = actions.add_parser(
        "fit",
        help="fit on the calib split (never eval) and write it to the cache",
        description="Run every calib question once through the fast pass (passes are cached in "
        "$FOGGEN_HOME/passes per model, so a refit or an interrupted run does not repeat them), "
        "fit a logistic calibrator on whether the local letter was right, and report its "
        "cross-validated AUROC and ECE. By default it reads the model's hidden state where the "
        "letter is read as well as the output distributions (format version 2); --reads "
        "outputs fits version 1. Your fit overrides the one shipped for a named model.",
    )
    fit.add_argument(
        "--reads",
        choices=("hidden", "outputs"),
        default="hidden",
        help="hidden: the hidden state and the output features (version 2, default); "
        "outputs: the output features only (version 1)",
    )
    fit.add_argument(
        "--components",
        type=int,
        default=None,
        metavar="K",
        help="principal components of the hidden state (default: chosen by cross-validation)",
    )
    add_flags(fit, RuntimeConfig, only=("model", "n_threads", "n_ctx"))
    fit.add_argument("--limit", type=int, metavar="N", help="at most N calib questions per domain")
    fit.add_argument(
        "--out", help="write here (default: $FOGGEN_HOME/calibrators/<model sha256>.json)"
    )
    fit.add_argument(
        "--l2",
        type=float,
        default=None,
        help="L2 penalty on the weights (default: chosen by cross-validated log loss)",
    )
    fit.add_argument("--no-progress", action="store_true", help="no progress bar")
    fit.add_argument("--json", action="store_true", help="print the fit metadata as JSON")
    fit.set_defaults(handler=run_fit)


def run_fit(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from edge_runtime.config import NO_CALIBRATOR, Mode, foggen_home
    from edge_runtime.errors import ConfigError
    from edge_runtime.mcq import stratified
    from edge_runtime.routing.calibrator import calibrator_path
    from edge_runtime.routing.fit import observe
    from edge_runtime.routing.passes import PassStore
    from edge_runtime.routing.rule import Signal
    from edge_runtime.runtime import EdgeRuntime

    if args.limit is not None and args.limit <= 0:
        raise ConfigError("--limit must be a positive number of questions per domain")
    if args.components is not None and (args.components <= 0 or args.reads != "hidden"):
        raise ConfigError("--components takes a positive number, with --reads hidden")
    # the fit reads fast passes only, and a stale or foreign calibrator must not block a refit
    config = replace(
        runtime_config(args), calibrator=NO_CALIBRATOR, signal=Signal.BUCKET, mode=Mode.FAST
    )
    home = foggen_home()
    with EdgeRuntime.load(config, home=home, capture_hidden=True) as runtime:
        store = PassStore.for_runtime(runtime, home)
        observations = observe(
            runtime,
            stratified(args.limit, split="calib"),
            progress=not args.no_progress,
            store=store,
        )
        file = runtime.model.file
    extra = {"per_domain_limit": args.limit, "model_reference": file.reference, "mode": "fast"}
    calibrator = _fit(args, observations, file.sha256, extra)
    out = calibrator.save(Path(args.out) if args.out else calibrator_path(home, file.sha256))
    fit = {**calibrator.fit, "path": str(out)}
    if args.json:
        print(json.dumps(fit))
    else:
        reads = (
            f"hidden state ({fit['components']} components) and outputs"
            if calibrator.needs_hidden
            else "outputs"
        )
        print(
            f"calibrator v{calibrator.version} ({reads}) for {file.sha256[:12]}... fitted on "
            f"{fit['n']} calib questions ({fit['n_correct']} right): cross-validated AUROC "
            f"{_num(fit['auroc'])}, ECE {_num(fit['ece'])}\nwritten to {out}"
        )
    return EXIT_OK


def _fit(
    args: argparse.Namespace, observations: list[Any], sha256: str, extra: dict[str, Any]
) -> Any:
    """Version 2 (hidden state and outputs) or 1 (outputs), per ``--reads``."""
    from edge_runtime.errors import ConfigError
    from edge_runtime.routing.fit import design, fit_calibrator, hidden_design
    from edge_runtime.routing.fit_hidden import fit_hidden_calibrator

    x, y = design(observations)
    try:
        if args.reads == "hidden":
            return fit_hidden_calibrator(
                x,
                hidden_design(observations),
                y,
                model_sha256=sha256,
                components=args.components,
                l2=args.l2,
                extra=extra,
            )
        return fit_calibrator(x, y, model_sha256=sha256, l2=args.l2, extra=extra)
    except ValueError as exc:  # e.g. too few right (or wrong) answers to fit on
        raise ConfigError(str(exc)) from exc


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
