"""Load on the kiosk service: N concurrent clients on loopback for a bounded time and count.

    python -m testkit.service_load [--clients 8] [--seconds 60] [--max-requests 5000]
                                      [--queue-size 4] [--threads N]
                                      [--model NAME] [--signal SIGNAL]
                                      [--out reports/service-load.json]

Starts ``foggen serve`` (real embedded model, no cloud) in a subprocess on 127.0.0.1; each
client posts bundled eval questions (all domains, in turn) and, on 429, waits the Retry-After
the service asked for. Reports throughput, p50/p95 latency of the answered requests and the
status-code histogram (only 200 and 429 are expected), with the load average of the machine
before and after: on a shared machine the figures are lower bounds. Timings are reported,
never asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from benchmarks.report import machine, summary, write_json
from benchmarks.service_process import serve
from edge_runtime.mcq import stratified
from edge_runtime.provenance import git_commit
from edge_runtime.question import Question


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.answered_ms: list[float] = []
        self.model_sha256: str | None = None

    def add(self, status: int, ms: float, record: dict[str, Any] | None) -> None:
        with self.lock:
            self.statuses[status] += 1
            if status == 200 and record is not None:
                self.answered_ms.append(ms)
                self.model_sha256 = record.get("model_sha256")


def client(
    url: str, questions: list[Question], tally: Tally, *, until: float, budget: threading.Semaphore
) -> None:
    session = requests.Session()
    n = 0
    while time.monotonic() < until and budget.acquire(blocking=False):
        question = questions[n % len(questions)]
        n += 1
        body = {"question": question.text, "choices": list(question.choices), "id": question.id}
        started = time.perf_counter()
        reply = session.post(f"{url}/v1/answer", json=body, timeout=120)
        ms = (time.perf_counter() - started) * 1000.0
        tally.add(reply.status_code, ms, reply.json() if reply.status_code == 200 else None)
        if reply.status_code == 429:
            time.sleep(float(reply.headers.get("Retry-After", "1")))


def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    questions = stratified(20, split="eval")
    tally, budget = Tally(), threading.Semaphore(args.max_requests)
    started = time.monotonic()
    until = started + args.seconds
    threads = [
        threading.Thread(
            target=client, args=(url, questions[i::args.clients], tally),
            kwargs={"until": until, "budget": budget},
        )
        for i in range(args.clients)
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    answered = len(tally.answered_ms)
    return {
        "elapsed_s": round(elapsed, 2),
        "requests": sum(tally.statuses.values()),
        "answered": answered,
        "throughput_answers_per_s": round(answered / elapsed, 3),
        "latency_ms_answered": summary(tally.answered_ms) if answered else None,
        "status_histogram": {str(k): v for k, v in sorted(tally.statuses.items())},
        "model_sha256": tally.model_sha256,
    }


def peak_rss_mb(pid: int) -> float | None:
    """The process's VmHWM (Linux only; None elsewhere)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), None)
    return round(int(line.split()[1]) / 1024, 1) if line else None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=5000)
    parser.add_argument("--queue-size", type=int, default=4, help="the service's queue size")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="llama.cpp")
    parser.add_argument("--model", default=None, help="a named model (default: the embedded)")
    parser.add_argument("--signal", default=None, help="a routing signal (default: the profile's)")
    parser.add_argument("--out", default="reports/service-load.json")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FOGGEN_DECISION_LOG": str(Path(tmp) / "decisions.jsonl")}
        env.pop("FOGGEN_API_TOKEN", None)
        env.pop("FOGGEN_CLOUD_URL", None)
        service_args = ["--queue-size", str(args.queue_size), "--threads", str(args.threads)]
        for flag, value in (("--model", args.model), ("--signal", args.signal)):
            if value is not None:
                service_args += [flag, value]
        with serve(*service_args, env=env, log_dir=Path(tmp)) as service:
            result = run(args, service.url)
            result["service_peak_rss_mb"] = peak_rss_mb(service.process.pid)
    report = {
        "benchmark": "service_load",
        "settings": {
            "clients": args.clients, "seconds": args.seconds, "max_requests": args.max_requests,
            "queue_size": args.queue_size, "threads": args.threads, "transport": "loopback",
            "model": args.model or "embedded", "signal": args.signal or "the profile's",
            "niceness": os.nice(0),
            "questions": "bundled eval, 20 per domain, in turn", "on_429": "wait Retry-After",
        },
        "result": result,
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]},
        "machine": {**machine(), "cpu_count": os.cpu_count()},
        "git_commit": git_commit(),
    }  # fmt: skip
    print(write_json(args.out, report))
    print(result)
    return report


if __name__ == "__main__":
    main()
