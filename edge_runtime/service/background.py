"""Work the service does off the request path: loading the model, flushing the outbox; and
what ``/readyz`` reports of them (:class:`OutboxStatus`)."""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from cloud_client.errors import OutboxError
from edge_runtime.runtime import EdgeRuntime

log = logging.getLogger(__name__)

FLUSH_BATCH = 50  # entries per background flush round, so a shutdown is not held up long


class OutboxState(str, Enum):
    """``/readyz``'s ``outbox.state``: whether the outbox could be read, and if not, why not
    (each state's meaning is its :data:`REASONS` text, which ``/readyz`` serves beside it)."""

    READABLE = "readable"
    NO_CLOUD = "no_cloud"
    NO_OUTBOX = "no_outbox"
    UNREADABLE = "unreadable"
    NOT_LOADED = "not_loaded"


REASONS = {
    OutboxState.READABLE: "the outbox reads; cloud.outbox_pending counts its pending entries",
    OutboxState.NO_CLOUD: "no cloud is configured: nothing escalates, so there is no outbox",
    OutboxState.NO_OUTBOX: "a cloud is configured without an outbox: failed escalations are "
    "not queued",
    OutboxState.UNREADABLE: "the outbox cannot be read (error names why) - the service log "
    "names the file and what to do",
    OutboxState.NOT_LOADED: "the model and its cloud settings are not loaded (yet)",
}


@dataclass(frozen=True)
class OutboxStatus:
    """What ``/readyz`` says of the outbox. It never fails readiness: the local answer stands
    without a cloud. ``error`` (unreadable only) is SQLite's error name (``SQLITE_NOTADB``,
    ``SQLITE_BUSY``, ...) or the file system's (``EISDIR``, ``EACCES``, ...), never the path:
    ``/readyz`` is open to anyone who can reach the port."""

    state: OutboxState
    pending: int | None = None  # readable only
    error: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"state": self.state.value, "reason": REASONS[self.state], "error": self.error}


def _error_name(exc: OutboxError) -> str:
    if exc.code:
        return exc.code
    cause = exc.__cause__
    if isinstance(cause, OSError) and cause.errno is not None:
        return errno.errorcode.get(cause.errno, f"errno {cause.errno}")
    return type(cause).__name__ if cause is not None else "unknown"


class ModelState:
    """Set once by the loading thread; read by /readyz and the request handlers."""

    def __init__(self) -> None:
        self.runtime: EdgeRuntime | None = None
        self.error_kind: str | None = None

    def outbox_status(self) -> OutboxStatus:
        """Whether the outbox reads and how many entries wait in it; an unreadable outbox is
        logged (with its path and the fix), never raised: health and metrics must not fail."""
        if self.runtime is None:
            return OutboxStatus(OutboxState.NOT_LOADED)
        escalator = self.runtime.escalator
        if escalator is None:
            return OutboxStatus(OutboxState.NO_CLOUD)
        if escalator.outbox is None:
            return OutboxStatus(OutboxState.NO_OUTBOX)
        try:
            pending = escalator.outbox.counts()["pending"]
        except OutboxError as exc:
            log.warning("%s", exc)
            return OutboxStatus(OutboxState.UNREADABLE, error=_error_name(exc))
        return OutboxStatus(OutboxState.READABLE, pending=pending)

    def outbox_pending(self) -> int | None:
        """Pending outbox entries; None when there is no outbox to read or it cannot be read
        (:meth:`outbox_status` tells which)."""
        return self.outbox_status().pending

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
