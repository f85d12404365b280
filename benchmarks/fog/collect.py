"""Collect each tier's per-question outcome once, on three real tiers on 127.0.0.1.

- top cloud: the SIMULATED cloud (in this process, its own HTTP threads);
- gateway: ``foggen serve`` on the 1.5B in a subprocess, the simulated cloud as its cloud,
  routing on its model's shipped routing profile (its best signal, per-domain taus);
- kiosk: the 270M in this process, escalating to the gateway through the real escalator
  (cloud client, outbox, privacy gate) with ``--force-route cloud``, so the gateway answers
  every question; the kiosk's own score and answer are kept for the offline curves.

The gateway's full record (its local answer, every score, its route, the cloud's letter when it
escalated, its timings) is read from its decision log, joined by the record id the kiosk sends.
One JSON line per question goes to ``outcomes.jsonl`` as it is answered; a re-run skips the
questions already there (a question whose escalation failed is not written, so it is retried).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.service_process import ServiceProcess, serve
from benchmarks.simulated_cloud import simulated_cloud
from cloud_client.config import CloudConfig
from edge_runtime.config import RuntimeConfig
from edge_runtime.escalation import Escalator
from edge_runtime.question import Question
from edge_runtime.record import DecisionRecord, Escalation
from edge_runtime.routing.rule import Route
from edge_runtime.runtime import EdgeRuntime


@dataclass(frozen=True)
class Tiers:
    """What runs where, and each upstream's client settings (reported with the results)."""

    kiosk_model: str = "embedded"
    gateway_model: str = "qwen2.5-coder-1.5b"
    # the gateway routes as a user's would, on its model's shipped routing profile (its best
    # signal and per-domain taus chosen on calib); the curves sweep every tau offline
    gateway_profile: str = "auto"
    kiosk_threads: int = 2  # the tiers take turns (a kiosk waits for its gateway)
    gateway_threads: int = 2
    # kiosk -> gateway: the 1.5B takes 2-16 s a question here, plus the gateway's own cloud call
    kiosk_client: tuple[tuple[str, float], ...] = (
        ("connect_timeout", 3.0), ("read_timeout", 120.0), ("deadline", 180.0), ("retries", 1),
    )  # fmt: skip
    # gateway -> cloud: the defaults (a fast cloud)
    gateway_client: tuple[tuple[str, float], ...] = (
        ("connect_timeout", 3.0), ("read_timeout", 10.0), ("deadline", 15.0), ("retries", 2),
    )  # fmt: skip

    def gateway_env(self, cloud_url: str, workdir: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {f"FOGGEN_CLOUD_{name.upper()}": str(value) for name, value in self.gateway_client}
        )
        env.update(
            FOGGEN_CLOUD_URL=cloud_url, FOGGEN_OUTBOX=str(workdir / "gateway-outbox.sqlite3"),
            FOGGEN_DECISION_LOG=str(workdir / "gateway-decisions.jsonl"),
            FOGGEN_LOG_QUESTIONS="omit", FOGGEN_QUEUE_SIZE="4",
        )  # fmt: skip
        return env

    def gateway_args(self) -> list[str]:
        return [
            "--model", self.gateway_model, "--profile", self.gateway_profile,
            "--threads", str(self.gateway_threads), "--node-name", "gateway",
        ]  # fmt: skip


class GatewayLog:
    """The gateway's decision log, read as it grows; records by id."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.records: dict[str, dict[str, Any]] = {}

    def find(self, record_id: str, timeout: float = 10.0) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while record_id not in self.records and time.monotonic() < deadline:
            self._read()
            if record_id not in self.records:
                time.sleep(0.02)
        return self.records.get(record_id)

    def _read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as file:
            file.seek(self.offset)
            for line in file:
                if not line.endswith(b"\n"):
                    break
                self.offset += len(line)
                entry = json.loads(line)
                self.records[entry["id"]] = entry


def done_ids(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()}


def _row(q: Question, kiosk: DecisionRecord, gateway: dict[str, Any]) -> dict[str, Any]:
    letter_probs = gateway.get("letter_probs") or {}
    local = gateway.get("local_answer")
    escalated = gateway["answer_source"] == "cloud"
    return {
        "id": q.id, "domain": q.domain, "gold": q.answer,
        "kiosk": {
            "answer": kiosk.local_answer, "bucket": kiosk.confidence,
            "letter": (kiosk.letter_probs or {}).get(kiosk.local_answer or "", None),
            "edge_ms": kiosk.latency_ms.edge, "hop_ms": kiosk.latency_ms.cloud,
        },
        "gateway": {
            "answer": local, "route": gateway["route"], "bucket": gateway["confidence"],
            "signal": gateway["signal"], "tau": gateway["tau"], "profile": gateway["profile"],
            "letter": letter_probs.get(local or "", None), "calibrated": gateway["p_correct"],
            "escalation": gateway["escalation"], "edge_ms": gateway["latency_ms"]["edge"],
            "cloud_ms": gateway["latency_ms"]["cloud"], "total_ms": gateway["latency_ms"]["total"],
        },
        "cloud": {"answer": gateway["answer"] if escalated else None},
        "path": [hop["node"] for hop in kiosk.to_dict()["provenance"]],
        "final": kiosk.answer,
    }  # fmt: skip


@contextmanager
def running_tiers(tiers: Tiers, workdir: Path) -> Iterator[tuple[ServiceProcess, EdgeRuntime]]:
    """The simulated cloud, the gateway process and the kiosk runtime, all on 127.0.0.1."""
    with simulated_cloud() as cloud:
        gateway_cm = serve(
            *tiers.gateway_args(),
            env=tiers.gateway_env(cloud.url, workdir), log_dir=workdir,
        )  # fmt: skip
        with gateway_cm as gateway:
            client = CloudConfig(
                url=f"{gateway.url}/v1", outbox=str(workdir / "kiosk-outbox.sqlite3"),
                **dict(tiers.kiosk_client),  # type: ignore[arg-type]
            )  # fmt: skip
            config = RuntimeConfig(
                model=tiers.kiosk_model, n_threads=tiers.kiosk_threads, node_name="kiosk",
                force_route=Route.CLOUD,
            )  # fmt: skip
            with Escalator.from_config(client) as escalator:
                runtime = EdgeRuntime.load(config, escalator=escalator)
                try:
                    yield gateway, runtime
                finally:
                    runtime.close()


def collect(questions: list[Question], tiers: Tiers, out: Path) -> dict[str, Any]:
    """Answer the questions not yet in ``out`` through the three tiers; counts and wall time."""
    done = done_ids(out)
    todo = [q for q in questions if q.id not in done]
    started, failed = time.perf_counter(), 0
    if todo:
        with tempfile.TemporaryDirectory(prefix="foggen-fog-") as tmp:
            workdir = Path(tmp)
            with running_tiers(tiers, workdir) as (_, kiosk), out.open("a") as file:
                log = GatewayLog(workdir / "gateway-decisions.jsonl")
                for q in tqdm(todo, desc="fog tiers", unit="q", file=sys.stderr):
                    record = kiosk.answer(q)
                    gateway = log.find(record.id)
                    if record.escalation is not Escalation.SENT or gateway is None:
                        failed += 1
                        continue
                    file.write(json.dumps(_row(q, record, gateway)) + "\n")
                    file.flush()
    return {
        "asked": len(todo),
        "failed": failed,
        "seconds": round(time.perf_counter() - started, 1),
    }
