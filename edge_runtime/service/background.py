"""Work the service does off the request path: loading the model, flushing the outbox."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cloud_client.errors import OutboxError
from edge_runtime.runtime import EdgeRuntime

log = logging.getLogger(__name__)

FLUSH_BATCH = 50  # entries per background flush round, so a shutdown is not held up long


class ModelState:
    """Set once by the loading thread; read by /readyz and the request handlers."""

    def __init__(self) -> None:
        self.runtime: EdgeRuntime | None = None
        self.error_kind: str | None = None

    def outbox_pending(self) -> int | None:
        """Pending outbox entries; None when no cloud (hence no outbox) is configured, or when
        the outbox cannot be read (logged: health and metrics must not fail with it)."""
        escalator = self.runtime.escalator if self.runtime else None
        if escalator is None or escalator.outbox is None:
            return None
        try:
            return escalator.outbox.counts()["pending"]
        except OutboxError as exc:
            log.warning("%s", exc)
            return None

    def breaker_state(self) -> str | None:
        escalator = self.runtime.escalator if self.runtime else None
        return escalator.client.breaker.state.value if escalator else None


def start_loading(
    state: ModelState,
    loader: Callable[[], EdgeRuntime],
    *,
    on_loaded: Callable[[EdgeRuntime], None],
    on_fatal: Callable[[], None],
) -> threading.Thread:
    """Load (and warm) the model in a thread, so /healthz answers while it loads."""

    def load() -> None:
        try:
            runtime = loader()
        except Exception as exc:
            state.error_kind = getattr(exc, "kind", "load_failed")
            log.error("the model did not load: %s", exc)
            on_fatal()
            return
        on_loaded(runtime)
        state.runtime = runtime  # last: the service is ready from here on
        log.info("model loaded and warm: %s", runtime.model.file.path.name)

    thread = threading.Thread(target=load, name="model-loader", daemon=True)
    thread.start()
    return thread


class OutboxFlusher:
    """Every ``interval`` s, replay pending outbox entries while the circuit breaker is not
    open (an open breaker means the cloud is down: the next round tries again)."""

    def __init__(self, state: ModelState, *, interval: float) -> None:
        self.state = state
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-flusher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush_once()
            except Exception:  # a full disk or a locked database: log it, try next round
                log.exception("background outbox flush failed")

    def flush_once(self) -> int:
        """One round; returns how many entries the cloud answered."""
        from cloud_client.breaker import BreakerState
        from cloud_client.outbox import flush

        runtime = self.state.runtime
        escalator = runtime.escalator if runtime else None
        if escalator is None or escalator.outbox is None or not self.state.outbox_pending():
            return 0
        if escalator.client.breaker.state is BreakerState.OPEN:
            return 0
        report = flush(escalator.outbox, escalator.client, force=False, limit=FLUSH_BATCH)
        log.info(
            "outbox flush: %d answered, %d failed, %d pending%s", report.answered,
            report.failed, report.pending,
            f" (stopped: {report.stopped_by})" if report.stopped_by else "",
        )  # fmt: skip
        return report.answered
