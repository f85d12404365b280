"""The FastAPI app: ``POST /v1/answer``, the OpenAI chat API (``GET /v1/models``,
``POST /v1/chat/completions``, see ``chat_api``), ``GET /healthz``, ``/readyz``, ``/metrics``.

``create_app(config, loader)`` takes a loader (a callable that returns a loaded, warm
``EdgeRuntime``) rather than a runtime, so the model loads in a background thread after start:
``/healthz`` answers at once and ``/readyz`` turns 200 when the model is warm. Every error is a
JSON ``{"error_kind", "error"}`` body (on the chat API, OpenAI's ``{"error": {"message",
"type", "code"}}`` with ``error_kind`` beside it); malformed input is a 4xx, never a 5xx.

``/readyz``'s body: ``status`` (``loading``, ``failed``, ``ready``), ``cloud`` (``breaker``:
the circuit breaker's state, ``outbox_pending``: pending outbox entries, both null when not
known) and ``outbox`` (``state``, ``reason``, ``error``: see
:class:`~edge_runtime.service.background.OutboxStatus`), which tells "no cloud configured"
(``no_cloud``) from "outbox unreadable" (``unreadable``, ``error`` naming why). The cloud and
outbox are shown, never a reason to fail readiness.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_runtime.config import MAX_ORDERS
from edge_runtime.errors import ConfigError, EdgeRuntimeError, InvalidQuestionError
from edge_runtime.question import make_question
from edge_runtime.routing.rule import Signal
from edge_runtime.runtime import EdgeRuntime
from edge_runtime.service.body import parse_body, read_body
from edge_runtime.service.chat_routes import add_chat_routes
from edge_runtime.service.config import ServiceConfig
from edge_runtime.service.errors import BadRequestError, ServiceError
from edge_runtime.service.metrics import ServiceMetrics
from edge_runtime.service.state import Service

log = logging.getLogger(__name__)

MAX_LABEL_CHARS = 256  # id and domain


class AnswerRequest(BaseModel):
    """Types only; the question's own limits are checked by ``make_question``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    question: str
    choices: list[str]
    id: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    domain: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    tau: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    signal: Signal | None = None
    orders: int | None = Field(default=None, ge=1, le=MAX_ORDERS)  # thorough mode


def parse_answer_request(body: bytes) -> AnswerRequest:
    return parse_body(AnswerRequest, body, what="schema")


OPENAI_PATHS = ("/v1/chat/", "/v1/models")


def error_response(exc: EdgeRuntimeError, status: int, path: str = "") -> JSONResponse:
    content: dict[str, Any] = {"error_kind": exc.kind, "error": str(exc)}
    if path.startswith(OPENAI_PATHS):
        content["error"] = {"message": str(exc), "type": exc.kind, "code": exc.kind}
    if isinstance(exc, BadRequestError) and exc.details:
        content["details"] = exc.details[:20]
    return JSONResponse(content, status_code=status, headers=getattr(exc, "headers", None))


class RequestMetrics:
    """Pure ASGI middleware: count every HTTP response by endpoint and status, time it."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.observe_request(scope["path"], status, seconds)


def create_app(
    config: ServiceConfig,
    loader: Callable[[], EdgeRuntime],
    *,
    on_fatal: Callable[[], None] = lambda: None,
) -> FastAPI:
    """The app; ``on_fatal`` is called (from the loading thread) if the model fails to load."""
    service = Service(config, loader, on_fatal)
    app = FastAPI(
        title="FogGen Edge",
        lifespan=service.lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.service = service
    app.add_middleware(RequestMetrics, metrics=service.metrics)
    _add_error_handlers(app)
    _add_routes(app, service)
    add_chat_routes(app, service)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc, exc.status, request.url.path)

    @app.exception_handler(InvalidQuestionError)
    async def invalid_question(request: Request, exc: InvalidQuestionError) -> JSONResponse:
        return error_response(exc, 422, request.url.path)

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError) -> JSONResponse:
        return error_response(exc, 400, request.url.path)

    @app.exception_handler(EdgeRuntimeError)
    async def runtime_error(request: Request, exc: EdgeRuntimeError) -> JSONResponse:
        log.error("%s failed: %s", request.url.path, exc)
        return error_response(exc, 500, request.url.path)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s failed unexpectedly", request.url.path)
        return JSONResponse({"error_kind": "internal", "error": "internal error"}, 500)


def _add_routes(app: FastAPI, service: Service) -> None:
    authorized = [Depends(service.check_token)]

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        state = service.state
        ready = state.runtime is not None
        status = "ready" if ready else ("failed" if state.error_kind else "loading")
        outbox = state.outbox_status()
        content = {
            "status": status,
            "cloud": {"breaker": state.breaker_state(), "outbox_pending": outbox.pending},
            "outbox": outbox.to_dict(),
        }
        return JSONResponse(content, status_code=200 if ready else 503)

    @app.get("/metrics", dependencies=authorized)
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    @app.post("/v1/answer", dependencies=authorized)
    async def answer(request: Request) -> JSONResponse:
        body = await read_body(request, service.config.max_body_bytes)
        parsed = parse_answer_request(body)
        service.runtime()  # 503 while loading, before any work
        question = make_question(
            parsed.question, parsed.choices, id=parsed.id, domain=parsed.domain
        )
        record = await service.admission.run(
            lambda: service.answer_and_log(
                question, tau=parsed.tau, signal=parsed.signal, orders=parsed.orders
            )
        )
        service.metrics.observe_decision(record)
        return JSONResponse(record.to_dict())
