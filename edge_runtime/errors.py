"""Typed errors of the edge runtime.

Each error also inherits the standard exception a caller would naturally catch, carries the
facts as attributes, and says in its message what to do next.
"""

from __future__ import annotations


class EdgeRuntimeError(Exception):
    """Base class of every error raised by :mod:`edge_runtime`."""

    kind = "runtime_error"


class ModelNotFoundError(EdgeRuntimeError, FileNotFoundError):
    kind = "model_not_found"

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"model file not found: {path} - pass an existing .gguf with --model or FOGGEN_MODEL, "
            "or omit it to use the embedded Gemma-3-270M"
        )


class ModelFormatError(EdgeRuntimeError, ValueError):
    """The file exists but is not a usable GGUF (bad magic, truncated, unreadable metadata)."""

    kind = "model_format"

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"{path} is not a usable GGUF model: {reason} - re-download or re-convert it "
            "(`foggen model fetch` rebuilds the embedded model)"
        )


class UnsupportedArchitectureError(EdgeRuntimeError, ValueError):
    kind = "unsupported_architecture"

    def __init__(self, path: str, architecture: str, supported: tuple[str, ...]) -> None:
        self.path = path
        self.architecture = architecture
        self.supported = supported
        super().__init__(
            f"{path} holds a '{architecture}' model; FogGen Edge runs {', '.join(supported)} "
            "GGUFs only - convert a Gemma-3 checkpoint with `foggen convert`"
        )


class ModelUnavailableError(EdgeRuntimeError, ConnectionError):
    """A hub reference could not be downloaded (offline, unknown repo, missing file)."""

    kind = "model_unavailable"

    def __init__(self, reference: str, reason: str) -> None:
        self.reference = reference
        self.reason = reason
        super().__init__(
            f"could not fetch {reference}: {reason} - check the network and the reference, "
            "or download the file yourself and pass its path with --model"
        )


class InvalidQuestionError(EdgeRuntimeError, ValueError):
    """The multiple-choice question itself is malformed."""

    kind = "invalid_question"


class PromptTooLongError(InvalidQuestionError):
    kind = "prompt_too_long"

    def __init__(self, n_tokens: int, limit: int) -> None:
        self.n_tokens = n_tokens
        self.limit = limit
        super().__init__(
            f"the question needs {n_tokens} prompt tokens but the context allows {limit} "
            "(context size minus room for the answer) - raise --ctx or shorten the question"
        )


class ConfigError(EdgeRuntimeError, ValueError):
    kind = "config"


class TauTableError(ConfigError):
    """A tau file that cannot be used: unreadable, another format, model or signal."""

    kind = "tau_table"
