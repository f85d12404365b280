"""The versioned decision record: what the CLI prints, the HTTP API returns and the log keeps.

Fields (all always present; values may be null where noted). Version 2 added
``p_correct_version``, version 3 ``provenance``, version 4 ``profile``, version 5 ``orders``
and ``order_answers``; an older record is a newer one without them.

schema_version  5
id              the question's id, or a generated one
domain          the question's domain or null
answer          the final letter (null only if nothing could answer)
local_answer    the edge model's letter (null only when free-form output did not parse)
answer_source   edge | cloud | edge_fallback
route           local | cloud: what routing decided (stays cloud when escalation fell back)
route_forced    true when --force-route overrode the decision
escalation      none | sent | unavailable | failed | queued | blocked_privacy
error_kind      null, or why the cloud (or the parse) failed
confidence      the emitted bucket as a number, or null
signal          which score routed (bucket)
score           the value of that score
p_correct       calibrated probability that the local answer is right (fast mode with a calibrator
                loaded, whatever the signal; else null)
p_correct_version  which calibrator produced p_correct: 1 (the output distributions' features),
                2 (those and the hidden state where the letter is read), 3 (those and a probe
                of chosen layers), or null
bucket_probs    {"0.0": p, ...} over the five buckets (fast mode), else null
letter_probs    {"A": p, ...} over the offered letters, given the emitted bucket (fast), else null
tau             the threshold used
profile         the routing profile that chose signal and tau ("<model>/<point>", e.g.
                "qwen2.5-coder-1.5b/cloud-50"), or null when they were chosen (or the card's rule)
orders          option orders asked (1: one pass; more: thorough mode, whose answer is the
                consensus of the orders and whose letter_probs are the orders' mean, mapped back
                to the question's own letters; confidence, bucket_probs and output are the first
                order's, the question as asked)
order_answers   each order's letter, mapped back to the question's letters (thorough), else null
mode            fast | grammar | free | sampled (the chat API at temperature > 0: one draw of
                the schema-forced sampler, answered by this node's model alone)
output          the edge model's text (the schema lines in fast and grammar mode)
latency_ms      {"edge": ms, "cloud": ms or null, "total": ms}
model_sha256    sha256 of the GGUF that answered
provenance      the path the answer took, this node first: one hop per tier that saw the
                question, each {"node", "model", "route", "signal", "score", "answer", "ms"}
                (a server that is not a FogGen node is one hop with route, signal and score
                null). ``answer`` is the letter that hop passed down; the last hop answered.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from edge_runtime.routing.rule import Route

SCHEMA_VERSION = 5


class AnswerSource(str, Enum):
    EDGE = "edge"
    CLOUD = "cloud"
    EDGE_FALLBACK = "edge_fallback"


class Escalation(str, Enum):
    NONE = "none"
    SENT = "sent"
    UNAVAILABLE = "unavailable"
    FAILED = "failed"
    QUEUED = "queued"
    BLOCKED_PRIVACY = "blocked_privacy"


@dataclass(frozen=True)
class Latency:
    edge: float
    cloud: float | None
    total: float


@dataclass(frozen=True)
class Hop:
    """One tier on the path of an answer (compact: what an operator reads in a log)."""

    node: str  # the node's name (or the upstream host, for a server that is not FogGen)
    model: str  # the model that node ran (its file name, or the name a cloud reported)
    route: str | None  # local | cloud at that node; null when it is not a FogGen node
    signal: str | None
    score: float | None
    answer: str | None  # the letter this hop passed down
    ms: float | None  # that hop's own total time, its upstream included

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hop:
        """A hop from a (sanitised) reply; missing names read as unknown."""
        return cls(
            node=str(data.get("node") or "?"), model=str(data.get("model") or "?"),
            route=data.get("route"), signal=data.get("signal"), score=data.get("score"),
            answer=data.get("answer"), ms=data.get("ms"),
        )  # fmt: skip


@dataclass(frozen=True)
class DecisionRecord:
    id: str
    domain: str | None
    answer: str | None
    local_answer: str | None
    answer_source: AnswerSource
    route: Route
    route_forced: bool
    escalation: Escalation
    error_kind: str | None
    confidence: float | None
    signal: str
    score: float | None
    p_correct: float | None
    p_correct_version: int | None
    bucket_probs: dict[str, float] | None
    letter_probs: dict[str, float] | None
    tau: float
    profile: str | None
    mode: str
    output: str
    latency_ms: Latency
    model_sha256: str
    provenance: tuple[Hop, ...] = ()
    orders: int = 1
    order_answers: tuple[str | None, ...] | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["provenance"] = [asdict(hop) for hop in self.provenance]
        for key, value in data.items():
            if isinstance(value, Enum):
                data[key] = value.value
        return {"schema_version": data.pop("schema_version"), **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


def error_record(*, line: int | None, id: str | None, kind: str, message: str) -> dict[str, Any]:
    """What stands in a JSON Lines stream for an input that could not be answered."""
    return {
        "schema_version": SCHEMA_VERSION,
        "id": id,
        "line": line,
        "error_kind": kind,
        "error": message,
    }
