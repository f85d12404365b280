"""CloudClient over real HTTP on 127.0.0.1: the simulated cloud and the fault-injecting one."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from benchmarks.simulated_cloud import SimulatedCloud
from cloud_client.breaker import BreakerState
from cloud_client.client import CloudClient
from cloud_client.config import CloudConfig
from cloud_client.errors import (
    CircuitOpenError,
    CloudConfigError,
    CloudConnectionError,
    CloudServerError,
    NoCloudModelError,
)
from edge_runtime.mcq import stratified
from testkit.fault_cloud import OK, Fault, fault_cloud, refused_url

CHOICES = ["alpha", "beta", "gamma", "delta"]
Build = Callable[..., CloudConfig]


def test_the_simulated_cloud_answers_through_the_client(
    sim_cloud: SimulatedCloud, cloud_config: Build
) -> None:
    questions = stratified(5)
    with CloudClient(cloud_config(sim_cloud.url)) as client:
        answers = [client.ask(q.text, q.choices) for q in questions]
    expected = [sim_cloud.book.reply(q.text, q.choices) for q in questions]
    assert [a.letter for a in answers] == [e.letter for e in expected]
    assert all(e.known for e in expected)
    right = sum(a.letter == q.answer for a, q in zip(answers, questions, strict=True))
    assert right == sum(bool(e.correct) for e in expected) > len(questions) // 2
    assert {a.model for a in answers} == {"simulated-cloud"}  # taken from /v1/models
    assert {a.attempts for a in answers} == {1}


def test_the_request_carries_settings_key_and_idempotency_key(cloud_config: Build) -> None:
    with fault_cloud([OK]) as cloud:
        config = cloud_config(cloud.url, model="served-model", api_key="sk-test-123")
        with CloudClient(config) as client:
            answer = client.ask("Which is second?", CHOICES, idempotency_key="key-1")
    assert answer.letter == "B" and answer.text == "Final answer: B"
    (hit,) = cloud.hits  # a named model: no /v1/models lookup
    assert hit.headers["Authorization"] == "Bearer sk-test-123"
    assert hit.headers["Idempotency-Key"] == "key-1"
    assert hit.body["model"] == "served-model"  # type: ignore[index]
    assert hit.body["temperature"] == 0.0 and hit.body["repeat_penalty"] == 1.0  # type: ignore[index]


def test_without_a_key_no_authorization_header_is_sent(cloud_config: Build) -> None:
    with fault_cloud([OK]) as cloud, CloudClient(cloud_config(cloud.url)) as client:
        client.ask("Q?", CHOICES)
    assert "Authorization" not in cloud.hits[0].headers


def test_a_server_that_lists_no_model_is_a_clear_error(cloud_config: Build) -> None:
    with (
        fault_cloud([OK], models=()) as cloud,
        CloudClient(cloud_config(cloud.url)) as client,
        pytest.raises(NoCloudModelError, match="--cloud-model") as info,
    ):
        client.ask("Q?", CHOICES)
    assert info.value.attempts == 1 and isinstance(info.value, LookupError)
    assert cloud.hits == []  # never sent a completion


def test_no_url_is_a_config_error() -> None:
    with pytest.raises(CloudConfigError, match="FOGGEN_CLOUD_URL"):
        CloudClient(CloudConfig())


def test_retries_are_counted_and_stop_at_the_limit(cloud_config: Build) -> None:
    error_503 = Fault(status=503, body=b"{}")
    with fault_cloud([error_503]) as cloud:
        config = cloud_config(cloud.url, retries=4, breaker_failures=10)
        with CloudClient(config) as client, pytest.raises(CloudServerError) as info:
            client.ask("Q?", CHOICES)
    assert info.value.attempts == 5 == len(cloud.hits) and info.value.status == 503


def test_an_open_breaker_stops_calls_and_force_goes_through(cloud_config: Build) -> None:
    with fault_cloud([Fault(status=500, body=b"{}"), OK]) as cloud:
        config = cloud_config(cloud.url, retries=0, breaker_failures=1)
        with CloudClient(config) as client:
            with pytest.raises(CloudServerError):
                client.ask("Q?", CHOICES)
            assert client.breaker.state is BreakerState.OPEN
            with pytest.raises(CircuitOpenError) as info:
                client.ask("Q?", CHOICES)
            assert info.value.attempts == 0 and len(cloud.hits) == 1  # nothing sent
            assert client.ask("Q?", CHOICES, force=True).letter == "B"
            assert client.breaker.state is BreakerState.CLOSED and len(cloud.hits) == 2


def test_a_question_that_opens_the_breaker_reports_its_own_error(cloud_config: Build) -> None:
    with refused_url() as url:
        config = cloud_config(url, retries=5, breaker_failures=2)
        with CloudClient(config) as client, pytest.raises(CloudConnectionError) as info:
            client.ask("Q?", CHOICES)
    assert info.value.attempts == 2  # stopped when the breaker opened, not after 6


def test_concurrent_questions_share_one_client(
    sim_cloud: SimulatedCloud, cloud_config: Build
) -> None:
    questions = stratified(3)
    with CloudClient(cloud_config(sim_cloud.url)) as client:
        serial = [client.ask(q.text, q.choices).letter for q in questions]
        with ThreadPoolExecutor(max_workers=6) as pool:
            parallel = list(pool.map(lambda q: client.ask(q.text, q.choices).letter, questions))
    assert parallel == serial
