"""The one funnel from HTTP statuses to typed errors, and what each error tells its callers."""

from __future__ import annotations

import pytest

from cloud_client.errors import (
    AnswerParseError,
    BadResponseError,
    CircuitOpenError,
    CloudAuthError,
    CloudConnectionError,
    CloudError,
    CloudNotFoundError,
    CloudRequestError,
    CloudServerError,
    CloudTimeoutError,
    RateLimitedError,
    error_for_status,
)

URL = "http://127.0.0.1:9/v1"


@pytest.mark.parametrize(
    "status, cls, standard, kind, retryable, permanent",
    [
        (400, CloudRequestError, ValueError, "bad_request", False, True),
        (401, CloudAuthError, PermissionError, "auth", False, False),
        (403, CloudAuthError, PermissionError, "auth", False, False),
        (404, CloudNotFoundError, LookupError, "not_found", False, False),
        (408, CloudTimeoutError, TimeoutError, "timeout", True, False),
        (413, CloudRequestError, ValueError, "bad_request", False, True),
        (422, CloudRequestError, ValueError, "bad_request", False, True),
        (429, RateLimitedError, ConnectionError, "rate_limited", True, False),
        (500, CloudServerError, ConnectionError, "server_error", True, False),
        (501, CloudServerError, ConnectionError, "server_error", False, False),
        (502, CloudServerError, ConnectionError, "server_error", True, False),
        (503, CloudServerError, ConnectionError, "server_error", True, False),
        (504, CloudServerError, ConnectionError, "server_error", True, False),
    ],
)
def test_error_for_status(
    status: int,
    cls: type[CloudError],
    standard: type[Exception],
    kind: str,
    retryable: bool,
    permanent: bool,
) -> None:
    error = error_for_status(status, url=URL, detail="boom", retry_after=2.0)
    assert type(error) is cls and isinstance(error, (CloudError, standard))
    assert (error.kind, error.retryable, error.permanent) == (kind, retryable, permanent)
    assert URL in str(error)
    if status != 408:
        assert getattr(error, "status", None) == status and "boom" in str(error)


def test_rate_limit_carries_retry_after_and_says_it() -> None:
    error = error_for_status(429, url=URL, retry_after=7.0)
    assert isinstance(error, RateLimitedError) and error.retry_after == 7.0
    assert "wait 7 s" in str(error)
    assert error_for_status(429, url=URL).retry_after is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "error, unhealthy",
    [
        (CloudConnectionError(URL, "refused"), True),
        (CloudTimeoutError(URL, "read", 1.0), True),
        (BadResponseError(URL, "not JSON"), True),
        (error_for_status(503, url=URL), True),
        (error_for_status(429, url=URL), True),
        (error_for_status(401, url=URL), False),
        (error_for_status(400, url=URL), False),
        (AnswerParseError("x", n_options=4), False),
        (CircuitOpenError(3.0), False),
    ],
)
def test_only_a_failing_cloud_counts_towards_the_breaker(
    error: CloudError, unhealthy: bool
) -> None:
    assert error.unhealthy is unhealthy


def test_messages_say_what_to_do_next() -> None:
    assert "FOGGEN_CLOUD_API_KEY" in str(error_for_status(401, url=URL))
    assert "/v1" in str(error_for_status(404, url=URL))
    assert "FOGGEN_CLOUD_DEADLINE" in str(CloudTimeoutError(URL, "read", 1.0))
    assert "foggen outbox flush" in str(CircuitOpenError(3.0))
