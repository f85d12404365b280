"""Fit the hidden-state calibrators the package ships for its named models (``make calibrators``).

For each named model (and the embedded model's chain, whose build is reproducible to the bit)
that is assembled here: its calib passes (from the pass cache when there), a version-2 fit as
``foggen calibrator fit`` makes it, written to ``edge_runtime/data/calibrators/<sha256>.json``.
A model that is not assembled is skipped with the command that assembles it, and one that
ships a layer-probe calibrator (version 3, from ``make probes``) keeps it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from edge_runtime.config import NO_CALIBRATOR, RuntimeConfig, foggen_home
from edge_runtime.mcq import stratified
from edge_runtime.models import resolve_model
from edge_runtime.routing.calibrator import shipped_calibrator, shipped_path
from edge_runtime.routing.fit import design, hidden_design, observe
from edge_runtime.routing.fit_hidden import fit_hidden_calibrator
from edge_runtime.routing.passes import PassStore
from edge_runtime.runtime import EdgeRuntime

MODELS = ("gemma-3-270m", "chain:3", "smollm2-135m", "qwen2.5-coder-1.5b")
PER_DOMAIN = 64  # 409 calib questions: the knowledgeable-tier subset, cached for the 1.5B


def ship(model: str, *, per_domain: int, threads: int) -> str:
    home = foggen_home()
    try:
        sha256 = resolve_model(model, home=home).sha256
    except Exception as exc:  # noqa: BLE001 - report and go on with the next model
        return f"{model}: skipped ({exc})"
    shipped = shipped_calibrator(sha256)
    if shipped is not None and shipped.probe is not None:
        return f"{model}: keeps its layer-probe calibrator (version 3, 'make probes' refits it)"
    config = replace(
        RuntimeConfig.from_env(), model=model, calibrator=NO_CALIBRATOR, n_threads=threads
    )
    with EdgeRuntime.load(config, home=home, capture_hidden=True) as runtime:
        store = PassStore.for_runtime(runtime, home)
        found = observe(runtime, stratified(per_domain, split="calib"), store=store)
        file = runtime.model.file
    x, y = design(found)
    extra = {"per_domain_limit": per_domain, "model_reference": model, "mode": "fast"}
    calibrator = fit_hidden_calibrator(
        x, hidden_design(found), y, model_sha256=file.sha256, extra=extra
    )
    out = calibrator.save(shipped_path(file.sha256))
    fit = calibrator.fit
    return (
        f"{model}: {fit['n']} calib questions, {fit['components']} components, L2 {fit['l2']}, "
        f"CV AUROC {fit['auroc']:.3f}, ECE {fit['ece']:.3f} -> {out}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(MODELS), help="named models")
    parser.add_argument("--limit", type=int, default=PER_DOMAIN, help="calib questions per domain")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    for model in args.models:
        print(ship(model, per_domain=args.limit, threads=args.threads), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
