"""CloudClient: one MCQ to an OpenAI-compatible chat-completions API, within a latency budget.

The only module of FogGen Edge that makes outgoing HTTP requests. One question gets at most
``1 + retries`` attempts, all inside ``deadline`` seconds: each attempt's connect and read
timeouts are cut to what is left of the budget, and no backoff is slept that would leave no
time for the attempt after it. Connection errors, timeouts, 429 (``Retry-After`` honoured) and
500/502/503/504 are retried; other statuses, malformed replies and unreadable answers are not.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import requests
import urllib3.exceptions

from cloud_client import protocol
from cloud_client.breaker import BreakerState, CircuitBreaker
from cloud_client.config import CloudConfig
from cloud_client.errors import (
    BadResponseError,
    CloudConfigError,
    CloudConnectionError,
    CloudError,
    CloudTimeoutError,
    NoCloudModelError,
    RateLimitedError,
    error_for_status,
)
from cloud_client.retry import backoff_delay, parse_retry_after

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
MIN_ATTEMPT_SECONDS = 0.05  # a retry needs at least this much of the budget left
DETAIL_CHARS = 200


@dataclass(frozen=True)
class CloudAnswer:
    letter: str
    model: str
    attempts: int
    text: str  # the reply as the cloud wrote it
    # a FogGen node's provenance (sanitised, see protocol.reply_provenance); empty otherwise
    provenance: tuple[dict[str, Any], ...] = ()


class CloudClient:
    """Thread-safe: one ``requests.Session`` per thread, one circuit breaker per client."""

    def __init__(
        self,
        config: CloudConfig,
        *,
        breaker: CircuitBreaker | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if config.url is None:
            raise CloudConfigError("no cloud URL - pass --cloud-url or set FOGGEN_CLOUD_URL")
        self.config = config
        self.url: str = config.url
        self.breaker = breaker or CircuitBreaker(
            failures=config.breaker_failures, cooldown=config.breaker_cooldown
        )
        self._rng = rng or random.Random()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._model = config.model

    def close(self) -> None:
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def __enter__(self) -> CloudClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one question -----------------------------------------------------------------------
    def ask(
        self,
        question: str,
        choices: Sequence[str],
        *,
        idempotency_key: str | None = None,
        force: bool = False,
        temperature: float = 0.0,
        seed: int | None = None,
        extension: dict[str, Any] | None = None,
    ) -> CloudAnswer:
        """The cloud's letter for one MCQ, or a typed :class:`CloudError` (``attempts`` set).

        ``force`` goes through an open circuit breaker (an explicit replay). ``temperature`` and
        ``seed`` are sent as given (escalation: greedy; a distillation teacher: T > 0, a seed
        per sample). ``extension`` is sent as the request's ``foggen`` field (a FogGen node
        upstream reads it; see ``edge_runtime.fog``).
        """
        sampling = {"temperature": temperature, "seed": seed, "extension": extension}
        deadline_at = time.monotonic() + self.config.deadline
        attempt = 0
        while True:
            try:
                self.breaker.allow(force=force)
            except CloudError as exc:
                exc.attempts = attempt
                raise
            attempt += 1
            try:
                answer = self._attempt(question, choices, idempotency_key, deadline_at, sampling)
            except CloudError as exc:
                self._record(exc)
                exc.attempts = attempt
                delay = self._retry_delay(exc, attempt, deadline_at, force=force)
                if delay is None:
                    raise
                log.warning("cloud attempt %d failed (%s); retrying in %.2f s", attempt, exc, delay)
                time.sleep(delay)
                continue
            self.breaker.record_success()
            log.info("cloud answered %s after %d attempt(s)", answer.letter, attempt)
            return replace(answer, attempts=attempt)

    def _record(self, exc: CloudError) -> None:
        if exc.unhealthy:
            self.breaker.record_failure()
        else:  # the cloud answered; the question or the settings were the problem
            self.breaker.record_success()

    def _retry_delay(
        self, exc: CloudError, attempt: int, deadline_at: float, *, force: bool
    ) -> float | None:
        """Seconds to sleep before the next attempt, or None to give up now (with ``exc``)."""
        if not exc.retryable or attempt > self.config.retries:
            return None
        if not force and self.breaker.state is BreakerState.OPEN:
            return None  # this question's failures opened it: report them, not the breaker
        delay = backoff_delay(
            attempt, base=self.config.backoff, cap=self.config.backoff_max, rng=self._rng
        )
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        if time.monotonic() + delay + MIN_ATTEMPT_SECONDS > deadline_at:
            return None
        return delay

    def _attempt(
        self,
        question: str,
        choices: Sequence[str],
        idempotency_key: str | None,
        deadline_at: float,
        sampling: dict[str, Any],
    ) -> CloudAnswer:
        model = self.model_name(deadline_at=deadline_at)
        body = protocol.chat_request(
            question, choices, model=model, max_tokens=self.config.max_tokens, **sampling
        )
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        payload = self._call("POST", "/chat/completions", deadline_at, body=body, headers=headers)
        try:
            text = protocol.completion_text(payload)
        except ValueError as exc:
            raise BadResponseError(self.url, str(exc)) from exc
        reported = payload.get("model") if isinstance(payload, dict) else None
        letter = protocol.parse_letter(text, choices)
        model = reported if isinstance(reported, str) else model
        return CloudAnswer(letter, model, 0, text, protocol.reply_provenance(payload))

    def model_name(self, *, deadline_at: float | None = None) -> str:
        """The configured model, else the first one the server lists at ``/models``."""
        if self._model is None:
            deadline_at = deadline_at or time.monotonic() + self.config.deadline
            payload = self._call("GET", "/models", deadline_at)
            try:
                ids = protocol.model_ids(payload)
            except ValueError as exc:
                raise BadResponseError(self.url, str(exc)) from exc
            if not ids:
                raise NoCloudModelError(self.url)
            self._model = ids[0]
            log.info("cloud model: %s (first listed at %s/models)", ids[0], self.url)
        return self._model

    # -- HTTP -------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        deadline_at: float,
        *,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One HTTP exchange; the reply's JSON, or a typed error. Never retries."""
        remaining = deadline_at - time.monotonic()
        if remaining <= 0:
            raise CloudTimeoutError(self.url, "latency budget spent", self.config.deadline)
        timeout = (
            min(self.config.connect_timeout, remaining),
            min(self.config.read_timeout, remaining),
        )
        all_headers = {"User-Agent": "foggen-edge", **(headers or {})}
        if self.config.api_key:
            all_headers["Authorization"] = f"Bearer {self.config.api_key}"
        try:
            response = self._session().request(
                method,
                self.url + path,
                json=body,
                headers=all_headers,
                timeout=timeout,
                stream=True,
            )
            with response:
                raw = _read_body(response, deadline_at, self.url, self.config.deadline)
        except requests.RequestException as exc:
            raise _transport_error(exc, self.url, timeout) from exc
        if response.status_code >= 400:
            raise error_for_status(
                response.status_code,
                url=self.url,
                detail=self._scrub(raw.decode("utf-8", "replace")[:DETAIL_CHARS].strip()),
                retry_after=parse_retry_after(response.headers.get("Retry-After"), now=time.time()),
            )
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise BadResponseError(self.url, f"the body is not JSON ({exc})") from exc

    def _scrub(self, text: str) -> str:
        key = self.config.api_key
        return text.replace(key, "[redacted key]") if key else text


def _read_body(response: requests.Response, deadline_at: float, url: str, budget: float) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_content(chunk_size=16384):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadResponseError(url, f"the body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if time.monotonic() > deadline_at:
            raise CloudTimeoutError(url, "latency budget spent while reading the reply", budget)
    return b"".join(chunks)


def _transport_error(
    exc: requests.RequestException, url: str, timeout: tuple[float, float]
) -> CloudError:
    """A ``requests`` exception as a typed error (requests wraps mid-body read timeouts)."""
    if isinstance(exc, requests.ConnectTimeout):
        return CloudTimeoutError(url, "connect", timeout[0])
    if isinstance(exc, requests.ReadTimeout) or any(
        isinstance(arg, urllib3.exceptions.ReadTimeoutError) for arg in exc.args
    ):
        return CloudTimeoutError(url, "read", timeout[1])
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return CloudConnectionError(url, "the connection dropped in the middle of the reply")
    reason = type(exc).__name__
    if isinstance(exc, requests.ConnectionError):
        reason = "connection refused or reset" if "refused" in str(exc).lower() else reason
    return CloudConnectionError(url, reason)
