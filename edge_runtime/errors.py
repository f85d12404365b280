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
            f"model file not found: {path} - pass an existing .gguf or a model name with --model "
            "or FOGGEN_MODEL ('foggen model list' shows the names), or omit it for the default"
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
            "chat models only - pick another model ('foggen model list' shows the named ones)"
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


class UnknownModelError(EdgeRuntimeError, ValueError):
    """A name that is neither a named model, a chain reference, a hub reference nor a file."""

    kind = "unknown_model"

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            f"no model is named {name!r} - the named models are {', '.join(known)} "
            "('foggen model list'); pass a .gguf path, chain:N or hf://owner/repo/file.gguf"
        )


class ModelPartsError(EdgeRuntimeError, FileNotFoundError):
    """A named model's packaged parts are missing or do not assemble to the pinned file."""

    kind = "model_parts"

    def __init__(self, name: str, reason: str, hint: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"cannot assemble the model {name}: {reason} - {hint}")


class ChatTemplateError(EdgeRuntimeError, ValueError):
    """The model's own chat template cannot render the FogGen prompt."""

    kind = "chat_template"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"the model's chat template cannot be used: {reason} - use a GGUF whose "
            "tokenizer.chat_template renders a system and a user message"
        )


class ChatTemplateTimeoutError(ChatTemplateError):
    """The model's chat template ran past its time bound: untrusted code that spins (loops or
    recursion without a useful end). Not a ``TimeoutError``: that is an ``OSError``, which a
    caller loading files would mistake for a disk problem."""

    kind = "chat_template_timeout"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(
            f"rendering it ran past its time bound of {seconds:g} s (a template that loops or "
            "recurses without end)"
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


def _fit_command(model_reference: str | None) -> str:
    if model_reference and model_reference != "embedded":
        return f"foggen calibrator fit --model {model_reference}"
    return "foggen calibrator fit"


class CalibratorMismatchError(ConfigError):
    """The calibrator was fitted for another GGUF (its sha256 differs)."""

    def __init__(
        self, calibrator_sha256: str, model_sha256: str, model_reference: str | None = None
    ) -> None:
        self.calibrator_sha256 = calibrator_sha256
        self.model_sha256 = model_sha256
        super().__init__(
            f"the calibrator was fitted for model sha256 {calibrator_sha256[:12]}..., not for "
            f"this model ({model_sha256[:12]}...) - run '{_fit_command(model_reference)}' to "
            "fit one for this model"
        )


class CalibratorHiddenSizeError(ConfigError):
    """A hidden-state calibrator whose width differs from the model's hidden state."""

    def __init__(self, path: str, expected: int, got: int, model_reference: str | None) -> None:
        self.expected = expected
        self.got = got
        super().__init__(
            f"{path} reads a hidden state of {got} numbers but this model's has {expected} - "
            f"it was fitted for another model: run '{_fit_command(model_reference)}' to fit "
            "one for this model"
        )


class CalibratorFormatError(ConfigError):
    """The calibrator file is corrupt, or in a format or version this runtime cannot read."""

    def __init__(self, path: str, reason: str, model_reference: str | None = None) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"{path} is not a usable calibrator: {reason} - run "
            f"'{_fit_command(model_reference)}' to fit it again"
        )


class CalibratorNotFoundError(ConfigError):
    """``--signal calibrated`` was asked for and no calibrator exists for the model."""

    def __init__(self, model_sha256: str, expected: str, model_reference: str | None) -> None:
        self.model_sha256 = model_sha256
        self.expected = expected
        super().__init__(
            f"--signal calibrated needs a calibrator for this model (sha256 "
            f"{model_sha256[:12]}...) and there is none at {expected} - run "
            f"'{_fit_command(model_reference)}', or pass one with --calibrator / "
            "FOGGEN_CALIBRATOR"
        )


class TauTableError(ConfigError):
    """A tau file that cannot be used: unreadable, another format, model or signal."""

    kind = "tau_table"
