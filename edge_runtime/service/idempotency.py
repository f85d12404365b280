"""``Idempotency-Key``: a retried request gets the answer already given, never a second one.

A request with a key is answered once. A retry that arrives while the first is still being
answered waits for that answer (the work runs on the admission pool, not in the request's
task, so the first client hanging up does not cancel it); a retry after it gets the stored
response, marked ``Idempotent-Replayed: true``. Only successful answers are stored; an error
is the waiters' error too, and the next retry asks again. A key reused with a different request
is refused (422), as Stripe and the IETF draft do.

The store is SQLite beside the decision log, so replays survive a restart; it is bounded by
count (oldest first) and age. Lookups run on the event loop, between the in-flight check and
the registration, so no second answer can start in between (a primary-key read is well under a
millisecond); writes run on the answering thread, before the in-flight entry is released.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from edge_runtime.errors import ConfigError
from edge_runtime.service.errors import BadRequestError, IdempotencyKeyReusedError

log = logging.getLogger(__name__)

MAX_KEY_CHARS = 255
HEADER = "idempotency-key"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    created     REAL NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_created ON answers (created);
"""


class IdempotencyStore:
    """Answered requests by key: at most ``max_entries``, none older than ``ttl`` seconds."""

    def __init__(self, path: Path, *, max_entries: int, ttl: float) -> None:
        self.path = path
        self.max_entries = max_entries
        self.ttl = ttl
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            path.chmod(0o600)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(
                f"the idempotency store at {path} could not be opened ({exc}) - set "
                "FOGGEN_IDEMPOTENCY_STORE to a writable path, or move a damaged file aside"
            ) from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, key: str) -> tuple[str, dict[str, Any]] | None:
        """(fingerprint, body) of a live entry, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT fingerprint, body FROM answers WHERE key = ? AND created >= ?",
                (key, time.time() - self.ttl),
            ).fetchone()
        return None if row is None else (row[0], json.loads(row[1]))

    def put(self, key: str, fingerprint: str, body: dict[str, Any]) -> None:
        now = time.time()
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)",
                (key, fingerprint, now, json.dumps(body, ensure_ascii=False)),
            )
            self._db.execute("DELETE FROM answers WHERE created < ?", (now - self.ttl,))
            self._db.execute(
                "DELETE FROM answers WHERE key IN (SELECT key FROM answers "
                "ORDER BY created DESC LIMIT -1 OFFSET ?)",
                (self.max_entries,),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])


def key_from(headers: Any) -> str | None:
    """The request's Idempotency-Key, checked (printable ASCII, at most 255 characters)."""
    key: str | None = headers.get(HEADER)
    if key is None:
        return None
    if not 0 < len(key) <= MAX_KEY_CHARS or not key.isascii() or not key.isprintable():
        raise BadRequestError(
            f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable ASCII characters"
        )
    return key


class Idempotency:
    """In-flight answers by key (event loop only), and the store of given ones."""

    def __init__(self, store: IdempotencyStore) -> None:
        self.store = store
        self._in_flight: dict[str, tuple[str, Future[dict[str, Any]]]] = {}

    async def answer(
        self,
        key: str | None,
        fingerprint: str,
        submit: Callable[[Callable[[dict[str, Any]], None]], Future[dict[str, Any]]],
    ) -> tuple[dict[str, Any], bool]:
        """The response body and whether it is a replay. ``submit(keep)`` starts the work on a
        thread and returns its future; the work calls ``keep(body)`` once its answer is
        logged, which stores it under ``key``."""
        if key is None:
            return await asyncio.wrap_future(submit(lambda body: None)), False
        if key in self._in_flight:
            wanted, running = self._in_flight[key]
            _check(wanted, fingerprint)
            return await asyncio.shield(asyncio.wrap_future(running)), True
        stored = self.store.get(key)
        if stored is not None:
            _check(stored[0], fingerprint)
            return stored[1], True
        future = submit(lambda body: self._keep(key, fingerprint, body))
        self._in_flight[key] = (fingerprint, future)
        loop = asyncio.get_running_loop()
        future.add_done_callback(
            lambda _: loop.call_soon_threadsafe(self._in_flight.pop, key, None)
        )
        return await asyncio.shield(asyncio.wrap_future(future)), False

    def _keep(self, key: str, fingerprint: str, body: dict[str, Any]) -> None:
        """Store an answer; a store that fails (disk full) costs the replay, not the answer."""
        try:
            self.store.put(key, fingerprint, body)
        except sqlite3.Error as exc:
            log.warning("answer for an Idempotency-Key not kept for replay: %s", exc)


def _check(wanted: str, fingerprint: str) -> None:
    if wanted != fingerprint:
        raise IdempotencyKeyReusedError()
