"""Typed errors of the benchmarks; each also inherits the standard type a caller would catch."""

from __future__ import annotations


class BenchmarkError(Exception):
    """Base class of every error raised by :mod:`benchmarks`."""

    kind = "benchmark_error"


class BenchConfigError(BenchmarkError, ValueError):
    """A bench setting that cannot work; the message says which and why."""

    kind = "bench_config"


class BenchFileError(BenchmarkError, ValueError):
    """A bench.json that cannot be used (missing, not a bench report, no such model)."""

    kind = "bench_file"


class BaselineModelError(BenchmarkError, ValueError):
    """The transformers baseline cannot run this checkpoint as the runtime runs it (a token it
    must stop at or pad with is missing); the message names the token and where it is read."""

    kind = "baseline_model"
