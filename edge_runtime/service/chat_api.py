"""The OpenAI chat API of a node: ``GET /v1/models`` and ``POST /v1/chat/completions``.

This is what lets one FogGen node be another's cloud. The MCQ is read from the last user
message, in one of two formats:

- the prompt FogGen's own cloud client sends (``cloud_client.protocol.user_message``);
- plain text: the question, then one line per option, ``A. text`` (or ``A) text``), from A on,
  the options last.

The reply is a chat completion whose message reads ``Final answer: <LETTER>``, with the node's
whole decision record in the ``foggen`` extension field (its ``provenance`` tells which tier
answered) and OpenAI's ``usage`` counted by this node's model's tokenizer: ``prompt_tokens``
the prompt it evaluated for the question (BOS, its chat format, the MCQ), ``completion_tokens``
the returned message content, ``total_tokens`` their sum (an answer from upstream is counted
the same way: what this node's model read and what the reply says). Anything else in the
messages is ignored; a message that is not an MCQ is refused (422 ``not_a_question``), never
answered with a guess. ``temperature`` > 0 draws one answer
from the schema-forced sampler, reproducibly per ``seed`` (a random seed, reported in
``foggen.seed``, when none is given); absent or 0 it is the node's greedy, routed answer.
``stream: true`` and ``n`` > 1 are refused. Fields this node does not use are ignored, as
OpenAI-compatible servers do.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from cloud_client.protocol import EXTENSION, read_user_message
from edge_runtime.fog import MAX_ID_CHARS, MAX_PATH, Trail
from edge_runtime.question import Question
from edge_runtime.record import DecisionRecord
from edge_runtime.runtime import EdgeRuntime
from edge_runtime.sampling import Sampling
from edge_runtime.service.body import parse_body
from edge_runtime.service.errors import (
    ModelNotFoundError,
    NoAnswerError,
    NotAQuestionError,
    UnsupportedRequestError,
)

MAX_LABEL_CHARS = 256
MAX_MESSAGES = 256
_OPTION = re.compile(r"\s*\(?([A-Z])[.)]\s+(\S.*?)\s*")
PLAIN_FORMAT = (
    "send the question, then one line per option ('A. text', 'B. text', ...) as the last "
    "user message"
)


class FogExtension(BaseModel):
    """What a FogGen client adds to its request (see ``edge_runtime.fog``)."""

    model_config = ConfigDict(extra="ignore")

    domain: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    id: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    path: list[Annotated[str, Field(max_length=MAX_ID_CHARS)]] = Field(
        default_factory=list, max_length=MAX_PATH
    )
    hops: int = Field(default=0, ge=0)


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0, allow_inf_nan=False)
    seed: int | None = None
    stream: bool | None = None
    n: int | None = Field(default=None, ge=1)
    foggen: FogExtension | None = None

    def check_supported(self) -> None:
        if self.stream:
            raise UnsupportedRequestError(
                "streaming is not offered: send stream: false (a node answers with one line)",
                kind="stream_unsupported",
            )
        if self.n not in (None, 1):
            raise UnsupportedRequestError("only n = 1 is offered: one request per answer")

    @property
    def extension(self) -> FogExtension:
        return self.foggen or FogExtension()

    def trail(self) -> Trail:
        return Trail(tuple(self.extension.path))

    def sampling(self) -> Sampling | None:
        if not self.temperature:
            return None
        seed = self.seed if self.seed is not None else secrets.randbits(63)
        return Sampling(self.temperature, seed)


def parse_chat_request(body: bytes) -> ChatRequest:
    return parse_body(ChatRequest, body, what="chat schema")


def last_user_text(messages: list[Message]) -> str:
    user = [m for m in messages if m.role == "user"]
    if not user:
        raise NotAQuestionError(f"no user message - {PLAIN_FORMAT}")
    content = user[-1].content
    if isinstance(content, str):
        return content
    parts = content or []
    texts = [p.get("text") for p in parts if p.get("type") == "text"]
    if not parts or len(texts) != len(parts) or not all(isinstance(t, str) for t in texts):
        raise NotAQuestionError(f"the last user message is not text alone - {PLAIN_FORMAT}")
    return "\n".join(str(t) for t in texts)


def read_mcq(text: str) -> tuple[str, tuple[str, ...]]:
    """(question, options) from FogGen's own prompt or the plain format; else 422."""
    ours = read_user_message(text)
    if ours is not None:
        return ours
    lines = text.strip().splitlines()
    options: list[tuple[str, str]] = []
    while lines and (match := _OPTION.fullmatch(lines[-1])):
        options.insert(0, (match[1], match[2]))
        lines.pop()
    question = "\n".join(lines).strip()
    letters = "".join(letter for letter, _ in options)
    if len(options) < 2 or not question or letters != "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[: len(letters)]:
        raise NotAQuestionError(
            f"the last user message is not a multiple-choice question - {PLAIN_FORMAT}"
        )
    return question, tuple(text for _, text in options)


def fingerprint(question: str, choices: tuple[str, ...], chat: ChatRequest) -> str:
    """What a retry under the same Idempotency-Key must repeat: the question and the sampling
    asked (not the domain, id or path, which a later replay from an outbox may lack)."""
    canonical = json.dumps(["chat", question, list(choices), chat.temperature or 0.0, chat.seed])
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def model_id(runtime: EdgeRuntime) -> str:
    return runtime.model.file.path.name


def check_model(chat: ChatRequest, runtime: EdgeRuntime) -> None:
    if chat.model is not None and chat.model != model_id(runtime):
        raise ModelNotFoundError(chat.model, model_id(runtime))


def models_body(runtime: EdgeRuntime) -> dict[str, Any]:
    entry = {
        "id": model_id(runtime), "object": "model", "created": 0, "owned_by": "foggen",
        EXTENSION: {"node": runtime.node.name, "node_id": runtime.node.id,
                    "model_sha256": runtime.model.file.sha256},
    }  # fmt: skip
    return {"object": "list", "data": [entry]}


def usage(runtime: EdgeRuntime, *, question: Question, content: str) -> dict[str, int]:
    """OpenAI's token counts by the model's own tokenizer: the prompt ids llama.cpp evaluates
    for ``question`` and the reply's ``content`` as plain text (no BOS, no control tokens)."""
    prompt = len(runtime.prompt_tokens(question))
    completion = len(runtime.engine.tokenize(content, special=False))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion_body(
    record: DecisionRecord, runtime: EdgeRuntime, sampling: Sampling | None, *, question: Question
) -> dict[str, Any]:
    if record.answer is None:
        raise NoAnswerError(
            f"the model's output did not parse and no cloud answered (record {record.id})"
        )
    message = {"role": "assistant", "content": f"Final answer: {record.answer}"}
    extension: dict[str, Any] = {"record": record.to_dict()}
    if sampling is not None:
        extension["seed"] = sampling.seed
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id(runtime),
        "system_fingerprint": f"foggen-{runtime.model.file.sha256[:12]}",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": usage(runtime, question=question, content=message["content"]),
        EXTENSION: extension,
    }
