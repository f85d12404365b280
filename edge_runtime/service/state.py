"""The service's shared state: what one app instance owns (config, loaded model, admission
queue, decision log, idempotency store, metrics), used by the routes of ``app`` and
``chat_routes`` alike (both import it; neither imports the other)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

from edge_runtime.question import Question
from edge_runtime.record import DecisionRecord
from edge_runtime.runtime import EdgeRuntime
from edge_runtime.service.admission import Admission
from edge_runtime.service.background import ModelState, OutboxFlusher, start_loading
from edge_runtime.service.config import ServiceConfig
from edge_runtime.service.decision_log import DecisionLog
from edge_runtime.service.errors import DecisionLogError, NotReadyError, UnauthorizedError
from edge_runtime.service.idempotency import Idempotency, IdempotencyStore
from edge_runtime.service.metrics import ServiceMetrics

log = logging.getLogger(__name__)


class Service:
    """Everything one app instance owns; built by ``app.create_app``, read by the routes."""

    def __init__(
        self,
        config: ServiceConfig,
        loader: Callable[[], EdgeRuntime],
        on_fatal: Callable[[], None],
    ) -> None:
        self.config = config
        self.loader = loader
        self.on_fatal = on_fatal
        self.state = ModelState()
        self.metrics = ServiceMetrics()
        self.admission = Admission(queue_size=config.queue_size, retry_after=config.retry_after)
        self.metrics.queue_depth.set_function(lambda: self.admission.admitted)
        self.decision_log: DecisionLog | None = None
        self.idempotency: Idempotency | None = None

    def check_token(self, request: Request) -> None:
        if self.config.api_token is None:
            return
        given = request.headers.get("authorization", "").encode("utf-8", "surrogateescape")
        wanted = f"Bearer {self.config.api_token}".encode()
        if not hmac.compare_digest(given, wanted):
            raise UnauthorizedError()

    def runtime(self) -> EdgeRuntime:
        if self.state.runtime is None:
            raise NotReadyError(self.config.retry_after)
        return self.state.runtime

    def answer_and_log(self, question: Question, **how: Any) -> DecisionRecord:
        """On an answering thread: the decision (``how``: EdgeRuntime.answer's options), then
        its log line on disk (fsync)."""
        record = self.runtime().answer(question, **how)
        assert self.decision_log is not None  # opened before the app serves
        try:
            self.decision_log.append(record, question)
        except OSError as exc:
            log.error("decision %s not logged: %s", record.id, exc)
            raise DecisionLogError(exc.strerror or str(exc)) from exc
        return record

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        config = self.config
        self.decision_log = DecisionLog(
            config.decision_log_path(), max_bytes=config.log_max_bytes, keep=config.log_keep,
            questions=config.log_questions,
        )  # fmt: skip
        store = IdempotencyStore(
            config.idempotency_path(), max_entries=config.idempotency_keys,
            ttl=config.idempotency_ttl,
        )  # fmt: skip
        self.idempotency = Idempotency(store)
        loading = start_loading(
            self.state, self.loader, on_loaded=self._loaded, on_fatal=self.on_fatal
        )
        flusher = OutboxFlusher(self.state, interval=config.flush_interval)
        flusher.start()
        try:
            yield
        finally:  # uvicorn has stopped accepting and finished the in-flight requests
            flusher.stop()
            self.admission.shutdown()
            loading.join()
            self.decision_log.close()
            store.close()
            self._close_runtime()

    def _loaded(self, runtime: EdgeRuntime) -> None:
        self.metrics.model_loaded(runtime, lambda: float(self.state.outbox_pending() or 0))

    def _close_runtime(self) -> None:
        runtime = self.state.runtime
        if runtime is None:
            return
        if runtime.escalator is not None:
            runtime.escalator.close()
        runtime.close()
        log.info("runtime closed")
