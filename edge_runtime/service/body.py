"""Reading a request body within a size limit (shared by every POST route)."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from edge_runtime.service.errors import BadJSONError, BadRequestError, BodyTooLargeError

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 beyond ``limit`` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLargeError(limit)
    return bytes(body)


def parse_body(model: type[M], body: bytes, *, what: str) -> M:
    """``body`` as ``model``: 400 ``bad_json`` when it is not JSON, else 422 naming the fields
    (never the values sent)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        details: list[dict[str, object]] = [
            {"loc": list(e["loc"]), "type": e["type"], "msg": e["msg"]} for e in errors
        ]
        if any(e["type"] == "json_invalid" for e in errors) or not errors:
            raise BadJSONError("the body is not valid JSON", details=details) from exc
        raise BadRequestError(f"the request does not match the {what}", details=details) from exc
