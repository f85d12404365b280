"""Fog tiers on real processes on 127.0.0.1: ``foggen serve`` nodes (the 270M and SmolLM2)
speaking the OpenAI chat API, chained kiosk -> gateway -> simulated cloud."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
import requests

from benchmarks.service_process import ServiceProcess, serve
from benchmarks.simulated_cloud import SimulatedCloud, SimulatedCloudConfig, simulated_cloud
from cloud_client.client import CloudClient
from cloud_client.config import CloudConfig
from cloud_client.outbox import Outbox
from cloud_client.protocol import user_message
from edge_runtime.question import make_question
from edge_runtime.runtime import EdgeRuntime
from edge_runtime.service.decision_log import read_log
from edge_runtime.service.log_summary import line
from tests.threads import TEST_THREADS

PLAIN = "Which gas do plants absorb from the air?\nA. Oxygen\nB. Carbon dioxide\nC. Nitrogen"
CHOICES = ["Oxygen", "Carbon dioxide", "Nitrogen"]


def _env(model_home: Path, workdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOGGEN_")}
    workdir.mkdir(parents=True, exist_ok=True)
    env.update(
        FOGGEN_HOME=str(model_home), FOGGEN_THREADS=str(TEST_THREADS), FOGGEN_LOG_QUESTIONS="omit",
        FOGGEN_DECISION_LOG=str(workdir / "decisions.jsonl"),
        FOGGEN_OUTBOX=str(workdir / "outbox.sqlite3"), **extra,
    )  # fmt: skip
    return env


@contextmanager
def node(model_home: Path, workdir: Path, *args: str, **env: str) -> Iterator[ServiceProcess]:
    with serve(*args, env=_env(model_home, workdir, **env), log_dir=workdir) as service:
        yield service


def _chat(url: str, body: dict[str, Any], **headers: str) -> requests.Response:
    return requests.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=120)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_openai_client_against_a_node(
    model_home: Path, tmp_path: Path, runtime: EdgeRuntime
) -> None:
    # usage: the same model's tokenizer (the session's runtime) counts what the node evaluated
    prompt = runtime.prompt_tokens(make_question(PLAIN.split("\n")[0], CHOICES))
    with node(model_home, tmp_path, "--node-name", "kiosk-1") as kiosk:
        client = openai.OpenAI(base_url=f"{kiosk.url}/v1", api_key="unused", max_retries=0)
        (model,) = client.models.list().data
        assert model.id.endswith(".gguf") and model.model_extra["foggen"]["node"] == "kiosk-1"
        for content in (PLAIN, user_message(PLAIN.split("\n")[0], CHOICES)):
            reply = client.chat.completions.create(
                model=model.id, messages=[{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": content}],
                extra_body={"foggen": {"domain": "science"}},
            )  # fmt: skip
            record = reply.model_extra["foggen"]["record"]
            assert reply.choices[0].message.content == f"Final answer: {record['answer']}"
            assert record["schema_version"] == 5 and record["domain"] == "science"
            assert [hop["node"] for hop in record["provenance"]] == ["kiosk-1"]
            usage = reply.usage
            assert usage is not None and usage.prompt_tokens == len(prompt) > 80  # prefix: 80
            assert usage.completion_tokens == 4  # "Final", " answer", ":", " <letter>"
            assert usage.total_tokens == len(prompt) + 4
        with pytest.raises(openai.UnprocessableEntityError) as refused:
            client.chat.completions.create(
                model=model.id, messages=[{"role": "user", "content": "Tell me a joke."}]
            )
        assert refused.value.body["code"] == "not_a_question"  # type: ignore[index]
        with pytest.raises(openai.BadRequestError) as streamed:
            client.chat.completions.create(
                model=model.id, messages=[{"role": "user", "content": PLAIN}], stream=True
            )
        assert "stream" in str(streamed.value)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": PLAIN}]
            )
    logged = list(read_log(tmp_path / "decisions.jsonl"))
    assert len(logged) == 2  # the refused requests are not decisions


def test_seeded_sampling_is_reproducible(model_home: Path, tmp_path: Path) -> None:
    with node(model_home, tmp_path) as kiosk:
        client = openai.OpenAI(base_url=f"{kiosk.url}/v1", api_key="unused", max_retries=0)

        def sample(seed: int | None) -> tuple[str, dict[str, Any]]:
            reply = client.chat.completions.create(
                model=client.models.list().data[0].id, temperature=1.5, seed=seed,
                messages=[{"role": "user", "content": PLAIN}],
            )  # fmt: skip
            return str(reply.choices[0].message.content), reply.model_extra["foggen"]

        first = sample(7)
        assert first[1]["seed"] == 7 and first[1]["record"]["mode"] == "sampled"
        assert first[1]["record"]["route"] == "local"  # a teacher's sample is never escalated
        outputs = {(text, ext["record"]["output"]) for text, ext in [sample(7) for _ in range(3)]}
        assert outputs == {(first[0], first[1]["record"]["output"])}
        unseeded = sample(None)[1]
        assert isinstance(unseeded["seed"], int)


def test_two_node_chain_with_provenance_and_the_gateway_down(
    model_home: Path, tmp_path: Path, sim_cloud: SimulatedCloud, smollm2_runtime: EdgeRuntime
) -> None:
    gateway_args = ("--model", "smollm2-135m", "--force-route", "cloud", "--node-name", "gateway")
    with node(model_home, tmp_path / "gw", *gateway_args, FOGGEN_CLOUD_URL=sim_cloud.url) as gw:
        kiosk_env = {"FOGGEN_CLOUD_URL": f"{gw.url}/v1", "FOGGEN_CLOUD_READ_TIMEOUT": "60"}
        kiosk_args = ("--force-route", "cloud", "--node-name", "kiosk")
        kiosk_cm = node(model_home, tmp_path / "kiosk", *kiosk_args, **kiosk_env)
        with kiosk_cm as kiosk:
            body = {"question": PLAIN.split("\n")[0], "choices": CHOICES, "id": "chain-1",
                    "domain": "science"}  # fmt: skip
            record = requests.post(f"{kiosk.url}/v1/answer", json=body, timeout=120).json()
            assert record["answer_source"] == "cloud" and record["escalation"] == "sent"
            hops = record["provenance"]
            assert [h["node"] for h in hops] == ["kiosk", "gateway", f"127.0.0.1:{sim_cloud.port}"]
            assert "smollm2" in hops[1]["model"].lower() and hops[2]["model"] == "simulated-cloud"
            assert hops[1]["route"] == "cloud" and hops[2]["route"] is None
            assert record["answer"] == hops[1]["answer"] == hops[2]["answer"]
            (logged,) = list(read_log(tmp_path / "kiosk" / "decisions.jsonl"))
            assert logged["provenance"] == hops  # the kiosk's log shows the whole path
            shown = line(logged)
            assert f"path=kiosk>gateway>127.0.0.1:{sim_cloud.port}" in shown
            (upstream,) = list(read_log(tmp_path / "gw" / "decisions.jsonl"))
            assert upstream["id"] == "chain-1" and upstream["domain"] == "science"
            gw.stop()  # the gateway goes down: the kiosk answers itself and queues
            body.update(id="chain-2")
            down = requests.post(f"{kiosk.url}/v1/answer", json=body, timeout=120).json()
            assert down["answer_source"] == "edge_fallback" and down["escalation"] == "queued"
            assert [h["node"] for h in down["provenance"]] == ["kiosk"]
    outbox = Outbox(tmp_path / "kiosk" / "outbox.sqlite3")
    assert outbox.counts()["pending"] == 1  # nothing lost


def test_an_idempotent_retry_waits_in_flight_and_replays_after_a_restart(
    model_home: Path, tmp_path: Path
) -> None:
    slow = SimulatedCloudConfig(latency_ms=2000)
    with simulated_cloud(slow) as cloud:
        env = {"FOGGEN_CLOUD_URL": cloud.url}
        with node(model_home, tmp_path, "--force-route", "cloud", **env) as gw:
            body = {"messages": [{"role": "user", "content": PLAIN}]}
            first: dict[str, Any] = {}

            def ask_first() -> None:
                first["reply"] = _chat(gw.url, body, **{"Idempotency-Key": "key-1"})
                first["done"] = time.monotonic()

            thread = threading.Thread(target=ask_first)
            thread.start()
            time.sleep(0.5)
            retry_sent = time.monotonic()
            retry = _chat(gw.url, body, **{"Idempotency-Key": "key-1"})
            thread.join()
            assert retry_sent < first["done"]  # the retry arrived while the first was answered
            assert retry.headers.get("Idempotent-Replayed") == "true"
            assert retry.json() == first["reply"].json()
            assert cloud.stats.requests == 1  # asked upstream once
            other = _chat(gw.url, {"messages": [{"role": "user", "content": PLAIN + "\nD. Argon"}]},
                          **{"Idempotency-Key": "key-1"})  # fmt: skip
            assert (
                other.status_code == 422 and other.json()["error_kind"] == "idempotency_key_reused"
            )
        with node(model_home, tmp_path, "--force-route", "cloud", **env) as restarted:
            replay = _chat(restarted.url, body, **{"Idempotency-Key": "key-1"})
            assert replay.headers.get("Idempotent-Replayed") == "true"
            assert replay.json() == first["reply"].json()
        assert cloud.stats.requests == 1
    assert len(list(read_log(tmp_path / "decisions.jsonl"))) == 1  # one decision, counted once


def test_a_retry_between_tiers_asks_upstream_once(model_home: Path, tmp_path: Path) -> None:
    """Our own client as the kiosk: its read timeout expires while the gateway waits on a slow
    cloud; its retries carry the same key, and the gateway answers them with the one answer."""
    with simulated_cloud(SimulatedCloudConfig(latency_ms=1500)) as cloud:
        env = {"FOGGEN_CLOUD_URL": cloud.url}
        with node(model_home, tmp_path, "--force-route", "cloud", **env) as gw:
            config = CloudConfig(
                url=f"{gw.url}/v1", read_timeout=0.4, deadline=30.0, retries=8, backoff=0.1,
                backoff_max=0.3, breaker_failures=20,
            )  # fmt: skip
            with CloudClient(config) as client:
                client.model_name()
                answer = client.ask(PLAIN.split("\n")[0], CHOICES, idempotency_key="kiosk-q1")
            assert answer.attempts > 1  # the first attempt did time out
            assert [h["node"] for h in answer.provenance][1:] == [f"127.0.0.1:{cloud.port}"]
            assert cloud.stats.requests == 1
    assert len(list(read_log(tmp_path / "decisions.jsonl"))) == 1


def test_a_loop_between_nodes_is_refused(model_home: Path, tmp_path: Path) -> None:
    port_a, port_b = _free_port(), _free_port()
    short = {"FOGGEN_CLOUD_READ_TIMEOUT": "60", "FOGGEN_CLOUD_DEADLINE": "90"}
    args = ("--force-route", "cloud")
    with (
        node(model_home, tmp_path / "a", *args, "--port", str(port_a), "--node-name", "a",
             FOGGEN_CLOUD_URL=f"http://127.0.0.1:{port_b}/v1", **short) as a,
        node(model_home, tmp_path / "b", *args, "--port", str(port_b), "--node-name", "b",
             FOGGEN_CLOUD_URL=f"http://127.0.0.1:{port_a}/v1", **short),
    ):  # fmt: skip
        started = time.monotonic()
        reply = _chat(a.url, {"messages": [{"role": "user", "content": PLAIN}]})
        assert reply.status_code == 200 and time.monotonic() - started < 60
        record = reply.json()["foggen"]["record"]
        assert [h["node"] for h in record["provenance"]] == ["a", "b"]  # b answered itself
        (at_b,) = list(read_log(tmp_path / "b" / "decisions.jsonl"))
        assert at_b["error_kind"] == "hop_refused" and at_b["answer_source"] == "edge_fallback"
        node_a = requests.get(f"{a.url}/v1/models", timeout=10).json()["data"][0]["foggen"]
        for extension, kind in (({"path": [node_a["node_id"]]}, "loop_detected"),
                                ({"hops": 9}, "too_many_hops")):  # fmt: skip
            body = {"messages": [{"role": "user", "content": PLAIN}], "foggen": extension}
            refused = _chat(a.url, body)
            assert refused.status_code == 508 and refused.json()["error_kind"] == kind
    (at_a,) = list(read_log(tmp_path / "a" / "decisions.jsonl"))  # refusals are not decisions
    assert [h["node"] for h in at_a["provenance"]] == ["a", "b"]
