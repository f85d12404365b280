"""Prometheus metrics of one service instance (its own registry, so apps never share counts)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from edge_runtime.record import DecisionRecord, Escalation
from edge_runtime.routing.rule import Route
from edge_runtime.runtime import EdgeRuntime

ENDPOINTS = (
    "/v1/answer", "/v1/chat/completions", "/v1/models", "/healthz", "/readyz", "/metrics",
)  # fmt: skip
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "foggen_requests", "HTTP requests by endpoint and status code",
            ["endpoint", "status"], registry=registry,
        )  # fmt: skip
        self.latency = Histogram(
            "foggen_request_duration_seconds", "HTTP request latency by endpoint",
            ["endpoint"], buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.decisions = Counter(
            "foggen_decisions", "answered questions by route, answer source and escalation",
            ["route", "answer_source", "escalation"], registry=registry,
        )  # fmt: skip
        self.routed_fraction = Gauge(
            "foggen_routed_fraction", "fraction of answered questions routed to the cloud",
            registry=registry,
        )  # fmt: skip
        self.escalation_errors = Counter(
            "foggen_escalation_errors", "escalations that fell back to the device, by error kind",
            ["error_kind"], registry=registry,
        )  # fmt: skip
        self.outbox_depth = Gauge(
            "foggen_outbox_depth", "outbox entries waiting for the cloud", registry=registry
        )
        self.queue_depth = Gauge(
            "foggen_queue_depth", "requests admitted (answered or waiting for the model)",
            registry=registry,
        )  # fmt: skip
        self.replays = Counter(
            "foggen_idempotent_replays", "requests answered with an earlier answer "
            "(Idempotency-Key: a retry in flight or a replay)", registry=registry,
        )  # fmt: skip
        self.threads = Gauge(
            "foggen_llama_threads",
            "llama.cpp threads the last answer used (fewer than threads_max while other "
            "processes keep cores busy)",
            registry=registry,
        )
        self.ready = Gauge("foggen_ready", "1 once the model is loaded and warm", registry=registry)
        self.model = Info("foggen_model", "the model that answers", registry=registry)
        self._lock = threading.Lock()
        self._answered = self._routed = 0

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        endpoint = path if path in ENDPOINTS else "other"  # bounded label values
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def observe_decision(self, record: DecisionRecord) -> None:
        self.decisions.labels(
            record.route.value, record.answer_source.value, record.escalation.value
        ).inc()
        if record.escalation in (Escalation.QUEUED, Escalation.FAILED):
            self.escalation_errors.labels(record.error_kind or "unknown").inc()
        with self._lock:
            self._answered += 1
            self._routed += record.route is Route.CLOUD
            self.routed_fraction.set(self._routed / self._answered)

    def model_loaded(self, runtime: EdgeRuntime, outbox_depth: Callable[[], float]) -> None:
        info = runtime.model.info
        self.model.info(
            {
                "sha256": runtime.model.file.sha256,
                "file": runtime.model.file.path.name,
                "source": runtime.model.file.source.value,
                "quantization": info.file_type or "unknown",
                "mode": runtime.config.mode.value,
                "signal": runtime.routing.default_signal.value,
                "tau": str(runtime.routing.default_tau),
                "profile": runtime.routing.profile_label or "",
                "threads_max": str(runtime.config.n_threads),
                "adaptive_threads": str(runtime.config.adaptive_threads).lower(),
            }
        )
        self.outbox_depth.set_function(outbox_depth)
        self.threads.set_function(lambda: runtime.threads_in_use)
        self.ready.set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
