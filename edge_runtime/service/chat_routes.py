"""The chat API's routes: same token, body limit, queue, decision log and metrics as
``/v1/answer``; the ``Idempotency-Key`` honoured (see ``idempotency``)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from edge_runtime.fog import check_path
from edge_runtime.question import make_question
from edge_runtime.record import DecisionRecord
from edge_runtime.service.body import read_body
from edge_runtime.service.chat_api import (
    check_model,
    completion_body,
    fingerprint,
    last_user_text,
    models_body,
    parse_chat_request,
    read_mcq,
)
from edge_runtime.service.errors import HopRefusedError
from edge_runtime.service.idempotency import key_from
from edge_runtime.service.state import Service

REPLAYED = "Idempotent-Replayed"


def add_chat_routes(app: FastAPI, service: Service) -> None:
    authorized = [Depends(service.check_token)]

    @app.get("/v1/models", dependencies=authorized)
    async def models() -> JSONResponse:
        return JSONResponse(models_body(service.runtime()))

    @app.post("/v1/chat/completions", dependencies=authorized)
    async def chat_completions(request: Request) -> JSONResponse:
        body = await read_body(request, service.config.max_body_bytes)
        chat = parse_chat_request(body)
        chat.check_supported()
        runtime = service.runtime()  # 503 while loading, before any work
        check_model(chat, runtime)
        text, choices = read_mcq(last_user_text(chat.messages))
        ext = chat.extension
        question = make_question(text, choices, id=ext.id, domain=ext.domain)
        trail = chat.trail()
        refused = check_path(trail, runtime.node, service.config.max_hops, hops=ext.hops)
        if refused is not None:
            raise HopRefusedError(refused.kind, refused.message)
        key = key_from(request.headers)
        sampling = chat.sampling()
        records: list[DecisionRecord] = []

        def submit(keep: Callable[[dict[str, Any]], None]) -> Future[dict[str, Any]]:
            def work() -> dict[str, Any]:
                record = service.answer_and_log(question, trail=trail, sampling=sampling)
                records.append(record)
                reply = completion_body(record, runtime, sampling, question=question)
                keep(reply)
                return reply

            return service.admission.submit(work)

        assert service.idempotency is not None  # opened before the app serves
        reply, replayed = await service.idempotency.answer(
            key, fingerprint(text, choices, chat), submit
        )
        if records:
            service.metrics.observe_decision(records[0])
        if replayed:
            service.metrics.replays.inc()
        return JSONResponse(reply, headers={REPLAYED: "true"} if replayed else None)
