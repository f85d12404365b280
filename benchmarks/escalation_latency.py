"""What an escalation adds to a question's latency, against the SIMULATED cloud on loopback.

    python -m benchmarks.escalation_latency [--per-domain 8] [--latency-ms 0] [--threads N]
                                            [--out reports/escalation-latency.json]

Each eval question is answered twice by the real runtime with a real escalator (client,
privacy gate, outbox): forced local, and forced to the cloud. The added latency is the
record's ``latency_ms.cloud`` (privacy check, HTTP round trip, parsing); the raw HTTP round
trip of ``CloudClient.ask`` is measured too. The first escalation, which also opens the
connection and looks the model up at ``/v1/models``, is reported on its own. The simulated
cloud adds ``--latency-ms`` per reply (default 0: the pure overhead). Timings are reported,
never asserted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.report import machine, summary, write_json
from benchmarks.simulated_cloud import LABEL, SimulatedCloudConfig, simulated_cloud
from cloud_client.config import CloudConfig
from edge_runtime.config import RuntimeConfig
from edge_runtime.escalation import Escalator
from edge_runtime.mcq import stratified
from edge_runtime.provenance import git_commit
from edge_runtime.routing.rule import Route
from edge_runtime.runtime import EdgeRuntime


def measure(runtime: EdgeRuntime, escalator: Escalator, per_domain: int) -> dict[str, Any]:
    questions = stratified(per_domain)
    first = runtime.answer(questions[0], force_route=Route.CLOUD)  # connect + /v1/models
    rows = []
    for q in tqdm(questions, desc=LABEL, unit="q", file=sys.stderr):
        runtime.warm()  # each run starts from the cached system prompt only
        local = runtime.answer(q, force_route=Route.LOCAL)
        runtime.warm()
        cloud = runtime.answer(q, force_route=Route.CLOUD)
        started = time.perf_counter()
        reply = escalator.client.ask(q.text, q.choices)
        http_ms = (time.perf_counter() - started) * 1000.0
        rows.append({
            "id": q.id, "domain": q.domain, "gold": q.answer,
            "escalation": cloud.escalation.value, "cloud_answer": cloud.answer,
            "local_answer": local.answer, "added_ms": cloud.latency_ms.cloud,
            "total_local_ms": local.latency_ms.total, "total_cloud_ms": cloud.latency_ms.total,
            "http_round_trip_ms": round(http_ms, 3), "same_reply": reply.letter == cloud.answer,
        })  # fmt: skip
    return {"first_escalation_ms": first.latency_ms.cloud, "rows": rows}


def analyse(result: dict[str, Any]) -> dict[str, Any]:
    rows = result["rows"]
    n = len(rows)
    return {
        "n_escalations": n,
        "all_sent": all(r["escalation"] == "sent" for r in rows),
        "added_ms": summary([r["added_ms"] for r in rows]),
        "http_round_trip_ms": summary([r["http_round_trip_ms"] for r in rows]),
        "total_ms": {
            "local": summary([r["total_local_ms"] for r in rows]),
            "escalated": summary([r["total_cloud_ms"] for r in rows]),
        },
        "first_escalation_ms": result["first_escalation_ms"],
        "simulated_cloud_accuracy": round(sum(r["cloud_answer"] == r["gold"] for r in rows) / n, 3),
        "edge_accuracy": round(sum(r["local_answer"] == r["gold"] for r in rows) / n, 3),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-domain", type=int, default=8, help="eval questions per domain")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated cloud delay")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    parser.add_argument("--out", default="reports/escalation-latency.json", help="JSON report")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    config = RuntimeConfig.from_env()
    if args.threads:
        config = replace(config, n_threads=args.threads)
    with (
        simulated_cloud(SimulatedCloudConfig(latency_ms=args.latency_ms)) as cloud,
        tempfile.TemporaryDirectory() as tmp,
    ):
        cloud_config = CloudConfig(url=cloud.url, outbox=str(Path(tmp) / "outbox.sqlite3"))
        with (
            Escalator.from_config(cloud_config) as escalator,
            EdgeRuntime.load(config, escalator=escalator) as runtime,
        ):
            result = measure(runtime, escalator, args.per_domain)
            model = {
                "sha256": runtime.model.file.sha256,
                "quantization": runtime.model.info.file_type,
            }
    report = {
        "label": f"{LABEL} on 127.0.0.1 (answers from the bundled gold data, card accuracies)",
        **analyse(result),
        "settings": {"per_domain": args.per_domain, "simulated_latency_ms": args.latency_ms,
                     "n_threads": config.n_threads},
        "model": model, "machine": machine(), "git_commit": git_commit(), "rows": result["rows"],
    }  # fmt: skip
    _print(report)
    print(f"\nwritten: {write_json(args.out, report)}")
    return report


def _print(report: dict[str, Any]) -> None:
    print(f"\n{report['label']}")
    print(f"{report['n_escalations']} escalations, all sent: {report['all_sent']}")
    print(f"{'':28} {'median ms':>10} {'p95 ms':>10}")
    for name, value in (
        ("added by escalation", report["added_ms"]),
        ("raw HTTP round trip", report["http_round_trip_ms"]),
        ("question, kept local", report["total_ms"]["local"]),
        ("question, escalated", report["total_ms"]["escalated"]),
    ):
        print(f"{name:28} {value['median']:10.2f} {value['p95']:10.2f}")
    print(f"first escalation (connect, /v1/models): {report['first_escalation_ms']:.2f} ms")
    print(
        f"accuracy: simulated cloud {report['simulated_cloud_accuracy']}, "
        f"edge (base model) {report['edge_accuracy']}"
    )


if __name__ == "__main__":
    main()
