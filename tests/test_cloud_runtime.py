"""The router: EdgeRuntime with an escalator fills the decision record from the escalation."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from benchmarks.simulated_cloud import SimulatedCloud
from cloud_client.config import CloudConfig
from cloud_client.outbox import Outbox
from edge_runtime.escalation import Escalator
from edge_runtime.mcq import stratified
from edge_runtime.routing.rule import Route
from edge_runtime.runtime import EdgeRuntime
from testkit.fault_cloud import Fault, fault_cloud

Build = Callable[..., CloudConfig]


@pytest.fixture
def routed(runtime: EdgeRuntime) -> Iterator[Callable[[CloudConfig], EdgeRuntime]]:
    """The session's model with an escalator for ``config`` (closed after the test)."""
    escalators: list[Escalator] = []

    def make(config: CloudConfig) -> EdgeRuntime:
        escalators.append(Escalator.from_config(config))
        return EdgeRuntime(runtime.engine, runtime.model, runtime.config, escalators[-1])

    yield make
    for escalator in escalators:
        escalator.close()


def test_escalation_answers_from_the_cloud(
    routed: Callable[[CloudConfig], EdgeRuntime], sim_cloud: SimulatedCloud, cloud_config: Build
) -> None:
    rt = routed(cloud_config(sim_cloud.url))
    before = sim_cloud.stats.requests
    for question in stratified(2, domains=("science", "kazakh")):
        record = rt.answer(question, force_route=Route.CLOUD)
        expected = sim_cloud.book.reply(question.text, question.choices).letter
        assert (record.route, record.answer_source.value, record.escalation.value) == (
            Route.CLOUD, "cloud", "sent",
        )  # fmt: skip
        assert record.answer == expected and record.local_answer in {"A", "B", "C", "D"}
        assert record.error_kind is None
        latency = record.latency_ms
        assert latency.cloud is not None and latency.cloud > 0
        assert latency.total == pytest.approx(latency.edge + latency.cloud, abs=0.01)
    assert sim_cloud.stats.requests - before == 4


def test_a_local_route_never_calls_the_cloud(
    routed: Callable[[CloudConfig], EdgeRuntime], sim_cloud: SimulatedCloud, cloud_config: Build
) -> None:
    rt = routed(cloud_config(sim_cloud.url))
    before = sim_cloud.stats.requests
    record = rt.answer(stratified(1)[0], force_route=Route.LOCAL)
    assert (record.answer_source.value, record.escalation.value) == ("edge", "none")
    assert record.latency_ms.cloud is None and sim_cloud.stats.requests == before


def test_a_failed_escalation_falls_back_and_is_queued(
    routed: Callable[[CloudConfig], EdgeRuntime], cloud_config: Build
) -> None:
    question = stratified(1, domains=("math",))[0]
    with fault_cloud([Fault(status=503, body=b"{}")]) as cloud:
        config = cloud_config(cloud.url, model="m")
        record = routed(config).answer(question, force_route=Route.CLOUD)
    data = json.loads(record.to_json())
    assert data["route"] == "cloud" and data["answer_source"] == "edge_fallback"
    assert data["escalation"] == "queued" and data["error_kind"] == "server_error"
    assert data["answer"] == data["local_answer"] is not None
    assert len(cloud.hits) == 3
    (entry,) = Outbox(config.outbox or "").entries()
    assert (entry.record_id, entry.local_answer, entry.reason) == (
        question.id, record.local_answer, "server_error",
    )  # fmt: skip
    assert (entry.question, entry.choices, entry.domain) == (
        question.text, question.choices, "math",
    )  # fmt: skip


def test_a_privacy_rule_keeps_the_question_on_the_device(
    routed: Callable[[CloudConfig], EdgeRuntime], sim_cloud: SimulatedCloud, cloud_config: Build
) -> None:
    config = cloud_config(
        sim_cloud.url, never_domains=("medical",), never_regex=r"(?i)\bpassport\b"
    )
    rt = routed(config)
    before = sim_cloud.stats.requests
    medical = stratified(1, domains=("medical",))[0]
    records = [
        rt.answer(medical, force_route=Route.CLOUD),
        rt.answer("Is my passport number needed?", ["yes", "no"], force_route=Route.CLOUD),
    ]
    for record in records:
        assert (record.answer_source.value, record.escalation.value) == (
            "edge_fallback", "blocked_privacy",
        )  # fmt: skip
        assert record.answer == record.local_answer and record.error_kind is None
    assert sim_cloud.stats.requests == before  # nothing left the device
    assert Outbox(config.outbox or "").entries() == []  # and nothing waits to leave it


def test_redacted_text_is_what_the_cloud_sees_and_what_the_outbox_keeps(
    routed: Callable[[CloudConfig], EdgeRuntime], cloud_config: Build
) -> None:
    text = "Mail jane.doe@example.org or call +1 415 555 0100 about card 4111 1111 1111 1111?"
    with fault_cloud([Fault(status=500, body=b"{}")]) as cloud:
        config = cloud_config(cloud.url, model="m", retries=0)
        record = routed(config).answer(text, ["yes", "no"], force_route=Route.CLOUD)
    sent = cloud.hits[0].body["messages"][0]["content"]  # type: ignore[index]
    expected = "Mail [email] or call [phone] about card [card]?"
    assert expected in sent and "jane" not in sent and "4111" not in sent
    (entry,) = Outbox(config.outbox or "").entries()
    assert entry.question == expected and record.escalation.value == "queued"
