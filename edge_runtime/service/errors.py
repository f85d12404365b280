"""Errors of the HTTP service; each carries the HTTP status and the JSON ``error_kind``."""

from __future__ import annotations

from edge_runtime.errors import EdgeRuntimeError


class ServiceError(EdgeRuntimeError):
    """Base class: a request the service answers with ``status`` and ``{"error_kind", ...}``."""

    kind = "service_error"
    status = 500
    headers: dict[str, str] | None = None


class UnauthorizedError(ServiceError, PermissionError):
    kind, status = "unauthorized", 401
    headers = {"WWW-Authenticate": "Bearer"}

    def __init__(self) -> None:
        super().__init__("missing or wrong bearer token - send 'Authorization: Bearer <token>'")


class BodyTooLargeError(ServiceError, ValueError):
    kind, status = "body_too_large", 413

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the request body is larger than {limit} bytes - send less")


class BadRequestError(ServiceError, ValueError):
    """The body is not a JSON object of the expected shape."""

    kind, status = "invalid_request", 422

    def __init__(self, message: str, *, details: list[dict[str, object]] | None = None) -> None:
        self.details = details or []
        super().__init__(message)


class BadJSONError(BadRequestError):
    kind, status = "bad_json", 400


class QueueFullError(ServiceError):
    kind, status = "queue_full", 429

    def __init__(self, capacity: int, retry_after: int) -> None:
        self.capacity = capacity
        self.headers = {"Retry-After": str(retry_after)}
        super().__init__(
            f"the model is busy ({capacity} requests admitted) - retry after {retry_after} s"
        )


class NotReadyError(ServiceError):
    kind, status = "not_ready", 503

    def __init__(self, retry_after: int) -> None:
        self.headers = {"Retry-After": str(retry_after)}
        super().__init__("the model is still loading - wait for /readyz to answer 200")


class DecisionLogError(ServiceError, OSError):
    """The decision could not be written to the log, so it is not acknowledged."""

    kind, status = "decision_log", 503

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"the decision log could not be written ({reason}) - free disk space or fix "
            "FOGGEN_DECISION_LOG; the answer was not recorded"
        )


class NotAQuestionError(ServiceError, ValueError):
    """A chat message the node cannot read as one multiple-choice question."""

    kind, status = "not_a_question", 422


class UnsupportedRequestError(ServiceError, ValueError):
    """A chat request asking for something this node does not do (streaming, n > 1, ...)."""

    kind, status = "unsupported", 400

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        if kind is not None:
            self.kind = kind
        super().__init__(message)


class ModelNotFoundError(ServiceError, LookupError):
    kind, status = "model_not_found", 404

    def __init__(self, asked: str, served: str) -> None:
        super().__init__(f"this node serves model {served!r}, not {asked!r} - see GET /v1/models")


class HopRefusedError(ServiceError):
    """The question's path is a loop or too long (HTTP 508 Loop Detected)."""

    status = 508

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind  # loop_detected | too_many_hops
        super().__init__(message)


class IdempotencyKeyReusedError(ServiceError, ValueError):
    kind, status = "idempotency_key_reused", 422

    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was already used for a different request - use a new key "
            "for a new question"
        )


class NoAnswerError(ServiceError):
    """Nothing could answer (free-mode output that did not parse, and no cloud)."""

    kind, status = "no_answer", 502
