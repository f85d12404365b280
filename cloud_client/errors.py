"""Typed errors of the cloud client.

Each error also inherits the standard exception a caller would naturally catch, carries the
facts as attributes, and says in its message what to do next. Three class attributes tell the
client and the outbox what to do with it:

- ``retryable``: worth another attempt within the same question's latency budget;
- ``unhealthy``: evidence that the cloud itself is failing (counts towards the circuit breaker);
- ``permanent``: replaying the question later cannot help (the outbox marks the entry failed).

No message or attribute ever holds the API key: the client never passes it to an error, and
response bodies quoted in messages are scrubbed first.
"""

from __future__ import annotations

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class CloudError(Exception):
    """Base class of every error raised by :mod:`cloud_client`."""

    kind = "cloud_error"
    retryable = False
    unhealthy = False
    permanent = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.attempts = 0  # HTTP attempts made for the question when the client gave up


class CloudConfigError(CloudError, ValueError):
    kind = "config"


class NoCloudModelError(CloudError, LookupError):
    kind = "no_model"

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(
            f"the cloud at {url} lists no model at /models - name one with --cloud-model or "
            "FOGGEN_CLOUD_MODEL"
        )


class CloudConnectionError(CloudError, ConnectionError):
    kind = "connection"
    retryable = True
    unhealthy = True

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"could not reach the cloud at {url}: {reason} - check the network and --cloud-url"
        )


class CloudTimeoutError(CloudError, TimeoutError):
    kind = "timeout"
    retryable = True
    unhealthy = True

    def __init__(self, url: str, phase: str, seconds: float) -> None:
        self.url = url
        self.phase = phase
        self.seconds = seconds
        super().__init__(
            f"the cloud at {url} did not answer in time ({phase}, {seconds:.2f} s) - raise "
            "FOGGEN_CLOUD_DEADLINE or the timeouts if the link is slow"
        )


class CloudHTTPError(CloudError):
    """An HTTP error status; ``status`` and ``detail`` (a scrubbed body excerpt) say which."""

    kind = "http_error"

    def __init__(self, url: str, status: int, detail: str, advice: str) -> None:
        self.url = url
        self.status = status
        self.detail = detail
        body = f": {detail}" if detail else ""
        super().__init__(f"the cloud at {url} answered HTTP {status}{body} - {advice}")


class RateLimitedError(CloudHTTPError, ConnectionError):
    kind = "rate_limited"
    retryable = True
    unhealthy = True

    def __init__(self, url: str, status: int, detail: str, retry_after: float | None) -> None:
        self.retry_after = retry_after
        wait = f"it asked to wait {retry_after:g} s" if retry_after is not None else "slow down"
        super().__init__(url, status, detail, f"rate limited, {wait}")


class CloudAuthError(CloudHTTPError, PermissionError):
    kind = "auth"

    def __init__(self, url: str, status: int, detail: str) -> None:
        super().__init__(url, status, detail, "check FOGGEN_CLOUD_API_KEY")


class CloudServerError(CloudHTTPError, ConnectionError):
    kind = "server_error"
    unhealthy = True

    def __init__(self, url: str, status: int, detail: str) -> None:
        self.retryable = status in RETRYABLE_STATUSES
        super().__init__(url, status, detail, "the cloud is failing, try again later")


class CloudNotFoundError(CloudHTTPError, LookupError):
    kind = "not_found"

    def __init__(self, url: str, status: int, detail: str) -> None:
        super().__init__(
            url, status, detail, "check that --cloud-url ends in /v1 and the model name exists"
        )


class CloudRequestError(CloudHTTPError, ValueError):
    """The cloud refused this request (400, 413, 422, ...): replaying it would not help."""

    kind = "bad_request"
    permanent = True

    def __init__(self, url: str, status: int, detail: str) -> None:
        super().__init__(url, status, detail, "the cloud refused this question")


class HopRefusedError(CloudHTTPError):
    """A FogGen node upstream refused the question's path (HTTP 508): a loop between nodes, or
    a chain longer than it allows. A configuration fault: no retry, and not the cloud's health."""

    kind = "hop_refused"
    permanent = True

    def __init__(self, url: str, status: int, detail: str) -> None:
        super().__init__(
            url, status, detail, "fix the chain of --cloud-url settings (a loop, or too long)"
        )


class BadResponseError(CloudError, ValueError):
    """The cloud answered 200 but not with an OpenAI-style chat completion."""

    kind = "bad_response"
    unhealthy = True

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"the cloud at {url} sent a response that is not an OpenAI chat completion: "
            f"{reason} - check that --cloud-url points at an OpenAI-compatible /v1 API"
        )


class AnswerParseError(CloudError, ValueError):
    """The reply names no offered option. ``letter`` is set when it named one not offered."""

    kind = "parse_error"
    permanent = True

    def __init__(self, reason: str, *, letter: str | None = None, n_options: int) -> None:
        self.reason = reason
        self.letter = letter
        self.n_options = n_options
        super().__init__(
            f"the cloud's reply names none of the {n_options} offered options ({reason}); "
            "the local answer stands"
        )


class CircuitOpenError(CloudError, ConnectionError):
    kind = "circuit_open"

    def __init__(self, retry_in: float) -> None:
        self.retry_in = retry_in
        super().__init__(
            f"the cloud kept failing; not calling it for another {retry_in:.1f} s "
            "(`foggen outbox flush` tries regardless)"
        )


class OutboxError(CloudError, OSError):
    """The outbox file could not be opened, read or written: damaged, unwritable, full, or held
    locked by another process past the busy timeout. Raised ``from`` the SQLite or file-system
    error; ``code`` is SQLite's error name (``SQLITE_NOTADB``, ``SQLITE_BUSY``, ...) when SQLite
    gave one, else None (the file system refused first, or Python is older than 3.11)."""

    kind = "outbox"

    def __init__(self, path: str, operation: str, reason: str, *, code: str | None = None) -> None:
        self.path = path
        self.operation = operation
        self.reason = reason
        self.code = code
        super().__init__(
            f"the outbox at {path} could not {operation}: {reason} - {_outbox_advice(path, code)}"
        )


def _outbox_advice(path: str, code: str | None) -> str:
    if code is not None and code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return "another process kept it locked; try again once that process is done"
    if code is not None and code.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return (
            "it is not an outbox or it is damaged: check that --outbox / FOGGEN_OUTBOX names "
            f"the right file, else move it aside to start an empty one (`sqlite3 {path} "
            ".recover` may save its questions)"
        )
    if code is not None and code.startswith("SQLITE_FULL"):
        return "the disk is full: free some space"
    return (
        "check that the file and its directory are writable (with space left), or set "
        "--outbox / FOGGEN_OUTBOX to another path"
    )


def error_for_status(
    status: int, *, url: str, detail: str = "", retry_after: float | None = None
) -> CloudError:
    """The one place an HTTP error status becomes a typed error."""
    if status == 429:
        return RateLimitedError(url, status, detail, retry_after)
    if status in (401, 403):
        return CloudAuthError(url, status, detail)
    if status == 404:
        return CloudNotFoundError(url, status, detail)
    if status == 508:
        return HopRefusedError(url, status, detail)
    if status == 408:
        return CloudTimeoutError(url, "server-side request timeout (HTTP 408)", 0.0)
    if status >= 500:
        return CloudServerError(url, status, detail)
    return CloudRequestError(url, status, detail)
