"""The fault matrix: every way the cloud can fail, and that no question is ever lost.

The cases (server behaviour, settings) are ``testkit.fault_matrix.CASES``; the outcomes
expected of them are here. Settings: 3 attempts at most, 3 failed attempts open the breaker,
a 3 s budget (0.6 s in the slow case), 0.25 s connect and 0.5 s read timeouts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_client.protocol import user_message
from testkit.fault_matrix import CASES, LOCAL_ANSWER, CaseResult, run_case

CLOUD_ANSWER = "B"

# case -> per question (escalation, error_kind, attempts, breaker after), chat completions
# the test cloud received (None: nothing listens for HTTP)
EXPECTED: dict[str, tuple[list[tuple[str, str | None, int, str]], int | None]] = {
    "healthy cloud": ([("sent", None, 1, "closed")], 1),
    "connection refused": (
        [("queued", "connection", 3, "open"), ("queued", "circuit_open", 0, "open")],
        None,
    ),
    "connect timeout (full backlog)": ([("queued", "timeout", 3, "open")], None),
    "stall mid-body": ([("queued", "timeout", 3, "open")], 3),
    "HTTP 500": ([("queued", "server_error", 3, "open")], 3),
    "HTTP 502": ([("queued", "server_error", 3, "open")], 3),
    "HTTP 503": ([("queued", "server_error", 3, "open")], 3),
    "HTTP 503, then a good reply": ([("sent", None, 2, "closed")], 2),
    "HTTP 429 Retry-After: 1, then a good reply": ([("sent", None, 2, "closed")], 2),
    "HTTP 429 Retry-After beyond the budget": ([("queued", "rate_limited", 1, "closed")], 1),
    "HTTP 429 without Retry-After": ([("queued", "rate_limited", 3, "open")], 3),
    "HTTP 401": ([("queued", "auth", 1, "closed")], 1),  # not retried
    "HTTP 400": ([("queued", "bad_request", 1, "closed")], 1),
    "HTTP 404": ([("queued", "not_found", 1, "closed")], 1),
    "malformed JSON": ([("queued", "bad_response", 1, "closed")], 1),
    "JSON of the wrong shape": ([("queued", "bad_response", 1, "closed")], 1),
    "answer not among the options": ([("queued", "parse_error", 1, "closed")], 1),
    "slow valid answer beyond the budget": ([("queued", "timeout", 1, "closed")], 1),
    "breaker opens, then a probe after the cool-down": (
        [("queued", "server_error", 3, "open"), ("sent", None, 1, "closed")],
        4,
    ),
}


def test_every_case_has_an_expectation() -> None:
    assert {case.name for case in CASES} == set(EXPECTED)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CaseResult]:
    workdir = tmp_path_factory.mktemp("fault-matrix")
    return {case.name: run_case(case, workdir) for case in CASES}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_fault_case(name: str, results: dict[str, CaseResult]) -> None:
    result = results[name]
    expected, hits = EXPECTED[name]
    got = [(o.escalation, o.error_kind, o.attempts, o.breaker) for o in result.outcomes]
    assert got == expected
    assert result.server_hits == hits
    for outcome in result.outcomes:  # the record's answer fields follow the escalation
        if outcome.escalation == "sent":
            assert (outcome.answer, outcome.answer_source) == (CLOUD_ANSWER, "cloud")
        else:
            assert (outcome.answer, outcome.answer_source) == (LOCAL_ANSWER, "edge_fallback")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_no_question_is_lost(name: str, results: dict[str, CaseResult]) -> None:
    """Each question was answered by the cloud or waits in the outbox, exactly once."""
    result = results[name]
    sent = {i for i, o in zip(result.question_ids, result.outcomes, strict=True)
            if o.escalation == "sent"}  # fmt: skip
    queued = [e.record_id for e in result.outbox]
    assert len(queued) == len(set(queued))
    assert sent | set(queued) == set(result.question_ids) and not sent & set(queued)
    for entry, outcome in zip(
        result.outbox, [o for o in result.outcomes if o.escalation == "queued"], strict=True
    ):
        assert entry.status.value == "pending" and entry.reason == outcome.error_kind
        assert entry.local_answer == LOCAL_ANSWER and entry.attempts == 1
        assert entry.cloud_answer is None and entry.domain == "science"
        assert name in entry.question and entry.choices == ("alpha", "beta", "gamma", "delta")
        assert user_message(entry.question, entry.choices)  # replayable as stored


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    from cloud_client.client import CloudClient
    from cloud_client.config import CloudConfig
    from testkit.fault_cloud import fault_cloud
    from testkit.fault_matrix import SETTINGS

    case = next(c for c in CASES if c.name.startswith("HTTP 429 Retry-After: 1"))
    with (
        fault_cloud(case.faults) as cloud,
        CloudClient(CloudConfig(url=cloud.url, **SETTINGS)) as c,
    ):
        assert c.ask("Q?", ["a", "b"]).letter == "B"
    first, second = cloud.hits
    assert second.at - first.at >= 0.95  # waited as asked (backoff alone would be < 0.1 s)
