"""Typed errors of the converter; each also inherits the standard type a caller would catch."""

from __future__ import annotations


class ConverterError(Exception):
    """Base class of every error raised by :mod:`converter`."""

    kind = "converter_error"


class CheckpointNotFoundError(ConverterError, FileNotFoundError):
    kind = "checkpoint_not_found"


class CheckpointFormatError(ConverterError, ValueError):
    """Files exist but cannot be read as a checkpoint (truncated, wrong dtype, bad JSON...)."""

    kind = "checkpoint_format"


class UnsupportedModelError(ConverterError, ValueError):
    """An architecture or configuration value this converter (or llama.cpp) cannot run right."""

    kind = "unsupported_model"


class AdapterError(ConverterError, ValueError):
    """A LoRA adapter that cannot be merged (unsupported option, shapes that do not match)."""

    kind = "adapter"


class HubUnavailableError(ConverterError, ConnectionError):
    kind = "hub_unavailable"


class OutputError(ConverterError, OSError):
    """The output cannot be written (directory missing or not writable, disk full)."""

    kind = "output"


class MissingExtraError(ConverterError, ImportError):
    kind = "missing_extra"

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"this needs {package} - install the extra: pip install 'foggen-edge[{extra}]'"
        )
