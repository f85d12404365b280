"""The escalation fault matrix: each failure a cloud can show, against the real client.

    python -m testkit.fault_matrix [--out reports/fault-matrix.json]

Every case runs questions through a real :class:`edge_runtime.escalation.Escalator` (client,
privacy gate, outbox in a temporary directory) against a FAULT-INJECTING test cloud on
127.0.0.1 (``testkit.fault_cloud``), with short timeouts and backoffs (:data:`SETTINGS`).
It reports, per question, the escalation outcome, the attempts, the breaker state after it and
the time to decision, and what the outbox holds. ``tests/test_cloud_faults.py`` asserts the
expected outcome of every case; this module only measures and prints.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.markdown import markdown_table
from benchmarks.report import machine, write_json
from cloud_client.config import CloudConfig
from cloud_client.outbox import OutboxEntry
from edge_runtime.escalation import Escalator
from edge_runtime.provenance import git_commit
from edge_runtime.question import make_question
from testkit.fault_cloud import (
    FAST_SETTINGS,
    OK,
    Fault,
    fault_cloud,
    full_backlog_url,
    refused_url,
)

LABEL = "fault-injecting test cloud on 127.0.0.1"
LOCAL_ANSWER = "A"
CHOICES = ("alpha", "beta", "gamma", "delta")  # the test cloud's good reply names B

SETTINGS: Mapping[str, Any] = {**FAST_SETTINGS, "model": "fault-model"}


def _status(code: int, *headers: tuple[str, str]) -> Fault:
    return Fault(status=code, body=b'{"error": {"message": "injected"}}', headers=headers)


@dataclass(frozen=True)
class Case:
    name: str
    faults: tuple[Fault, ...] = (OK,)
    endpoint: str = "http"  # http | refused | backlog
    questions: int = 1
    pause: float = 0.0  # seconds between questions
    settings: Mapping[str, Any] = field(default_factory=dict)


CASES: tuple[Case, ...] = (
    Case("healthy cloud"),
    Case("connection refused", endpoint="refused", questions=2),
    Case("connect timeout (full backlog)", endpoint="backlog"),
    Case("stall mid-body", (Fault(stall=True),)),
    Case("HTTP 500", (_status(500),)),
    Case("HTTP 502", (_status(502),)),
    Case("HTTP 503", (_status(503),)),
    Case("HTTP 503, then a good reply", (_status(503), OK)),
    Case("HTTP 429 Retry-After: 1, then a good reply", (_status(429, ("Retry-After", "1")), OK)),
    Case("HTTP 429 Retry-After beyond the budget", (_status(429, ("Retry-After", "3600")),)),
    Case("HTTP 429 without Retry-After", (_status(429),)),
    Case("HTTP 401", (_status(401),)),
    Case("HTTP 400", (_status(400),)),
    Case("HTTP 404", (_status(404),)),
    Case("malformed JSON", (Fault(body=b'{"choices": [{"message": '),)),
    Case("JSON of the wrong shape", (Fault(body=b'{"answer": "B"}'),)),
    Case("answer not among the options", (Fault(content="Final answer: E"),)),
    Case(
        "slow valid answer beyond the budget",
        (Fault(delay=5.0),),
        settings={"deadline": 0.6, "read_timeout": 5.0},
    ),
    Case(
        "breaker opens, then a probe after the cool-down",
        (_status(503), _status(503), _status(503), OK),
        questions=2,
        pause=0.3,
        settings={"breaker_cooldown": 0.25},
    ),
)


@dataclass(frozen=True)
class Outcome:
    """One question of a case."""

    answer: str | None
    answer_source: str
    escalation: str
    error_kind: str | None
    attempts: int
    breaker: str  # the breaker's state right after the decision
    seconds: float  # time to decision


@dataclass(frozen=True)
class CaseResult:
    case: str
    outcomes: tuple[Outcome, ...]
    server_hits: int | None  # chat completions the test cloud received (None: no HTTP server)
    outbox: tuple[OutboxEntry, ...]
    question_ids: tuple[str, ...]


@contextlib.contextmanager
def _endpoint(case: Case) -> Iterator[tuple[str, Any]]:
    if case.endpoint == "refused":
        with refused_url() as url:
            yield url, None
    elif case.endpoint == "backlog":
        with full_backlog_url() as url:
            yield url, None
    else:
        with fault_cloud(case.faults) as cloud:
            yield cloud.url, cloud


def run_case(case: Case, workdir: Path) -> CaseResult:
    """Run one case's questions through a fresh escalator; the outbox lives in ``workdir``."""
    slug = "".join(c if c.isalnum() else "-" for c in case.name.lower())
    outcomes, ids = [], []
    with _endpoint(case) as (url, cloud):
        settings = {**SETTINGS, **case.settings}
        config = CloudConfig(url=url, outbox=str(workdir / f"{slug}.sqlite3"), **settings)
        with Escalator.from_config(config) as escalator:
            for n in range(case.questions):
                question = make_question(
                    f"Question {n} of case '{case.name}': which is second?",
                    list(CHOICES),
                    id=f"{slug}-{n}",
                    domain="science",
                )
                started = time.monotonic()
                result = escalator.escalate(question, LOCAL_ANSWER, record_id=f"{slug}-{n}")
                seconds = time.monotonic() - started
                breaker = escalator.client.breaker.state.value
                outcomes.append(
                    Outcome(
                        result.answer,
                        result.source.value,
                        result.escalation.value,
                        result.error_kind,
                        result.attempts,
                        breaker,
                        round(seconds, 3),
                    )
                )
                ids.append(f"{slug}-{n}")
                time.sleep(case.pause)
            entries = tuple(escalator.outbox.entries()) if escalator.outbox else ()
        hits = len(cloud.hits) if cloud is not None else None
    return CaseResult(case.name, tuple(outcomes), hits, entries, tuple(ids))


def table(results: list[CaseResult]) -> str:
    """The matrix as a Markdown table, one row per question."""
    header = ["case", "q", "outcome", "error_kind", "attempts", "breaker after",
              "time to decision", "outbox"]  # fmt: skip
    rows = []
    for result in results:
        for n, o in enumerate(result.outcomes):
            outbox = f"{len(result.outbox)} pending" if n == len(result.outcomes) - 1 else ""
            rows.append(
                [result.case, str(n + 1), f"{o.answer_source} / {o.escalation}",
                 o.error_kind or "-", str(o.attempts), str(o.breaker),
                 f"{o.seconds * 1000:.0f} ms", outbox]
            )  # fmt: skip
    return "\n".join(markdown_table(header, rows))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/fault-matrix.json", help="where the JSON goes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the retries' warnings would drown the table
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_case(case, Path(tmp)) for case in CASES]
    print(f"escalation fault matrix against a {LABEL}; settings {dict(SETTINGS)}\n")
    print(table(results))
    report = {
        "label": LABEL,
        "settings": dict(SETTINGS),
        "cases": [
            {
                "case": r.case,
                "outcomes": [asdict(o) for o in r.outcomes],
                "server_hits": r.server_hits,
                "outbox": [e.to_dict() for e in r.outbox],
            }
            for r in results
        ],
        "machine": machine(),
        "git_commit": git_commit(),
    }
    print(f"\nwritten: {write_json(args.out, report)}")
    return report


if __name__ == "__main__":
    main()
