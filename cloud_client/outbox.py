"""The durable outbox: escalations that fell back to the local answer, kept until the cloud
answers them (SQLite in WAL mode, shared by ``foggen ask``, ``foggen outbox`` and the service).

Every state change is one SQLite transaction, so a SIGKILL at any point leaves either the old
row or the new one. Entries are unique by an idempotency key (one per question), so storing a
question twice keeps one entry. A flusher claims one entry at a time with a lease (owner and
expiry); another flusher skips leased entries, and an entry whose flusher died is claimed again
once its lease runs out. Only the lease holder can record the answer, and an answered entry is
never claimed again. The one unavoidable window: a flusher killed after the cloud answered but
before the answer was committed leaves the entry pending, so it is sent again later, with the
same ``Idempotency-Key`` header for servers that deduplicate.

Leases and timestamps read the outbox's ``clock`` (``time.time`` unless a test passes its own),
and every public operation raises :class:`~cloud_client.errors.OutboxError`, naming the file,
when SQLite or the file system fails: callers never see ``sqlite3.Error``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloud_client.errors import CloudError, OutboxError
from cloud_client.protocol import fog_extension

if TYPE_CHECKING:
    from cloud_client.client import CloudClient

OUTBOX_FILENAME = "outbox.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000

Clock = Callable[[], float]  # Unix time in seconds, like time.time

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    key          TEXT NOT NULL UNIQUE,          -- idempotency key, one per question
    record_id    TEXT NOT NULL,                 -- the decision record's id
    domain       TEXT,
    question     TEXT NOT NULL,                 -- as sent: after redaction
    choices      TEXT NOT NULL,                 -- JSON array, as sent
    local_answer TEXT,
    reason       TEXT NOT NULL,                 -- why the live escalation fell back
    status       TEXT NOT NULL CHECK (status IN ('pending', 'answered', 'failed')),
    attempts     INTEGER NOT NULL,              -- escalations tried: the live one + flushes
    created      TEXT NOT NULL,                 -- UTC, ISO 8601
    updated      TEXT NOT NULL,
    last_error   TEXT,
    cloud_answer TEXT,
    cloud_model  TEXT,
    answered     TEXT,
    lease_owner  TEXT,
    lease_until  REAL                           -- Unix time
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (status, id);
"""


class EntryStatus(str, Enum):
    PENDING = "pending"
    ANSWERED = "answered"
    FAILED = "failed"


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    key: str
    record_id: str
    domain: str | None
    question: str
    choices: tuple[str, ...]
    local_answer: str | None
    reason: str
    status: EntryStatus
    attempts: int
    created: str
    updated: str
    last_error: str | None
    cloud_answer: str | None
    cloud_model: str | None
    answered: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> OutboxEntry:
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values["choices"] = tuple(json.loads(row["choices"]))
        values["status"] = EntryStatus(row["status"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["choices"] = list(self.choices)
        data["status"] = self.status.value
        return data


def default_outbox_path(env: Mapping[str, str] | None = None) -> Path:
    """``$FOGGEN_HOME/outbox.sqlite3``, else ``$XDG_DATA_HOME/foggen/outbox.sqlite3`` (user data,
    not cache: clearing caches must not drop queued questions)."""
    env = os.environ if env is None else env
    if env.get("FOGGEN_HOME"):
        return Path(env["FOGGEN_HOME"]).expanduser() / OUTBOX_FILENAME
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "foggen" / OUTBOX_FILENAME


def _timestamp(unix_time: float) -> str:
    moment = datetime.fromtimestamp(unix_time, timezone.utc)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


class Outbox:
    """Opens a short-lived connection per operation: safe across threads and processes.

    ``clock`` gives the time for leases and the ``created``/``updated``/``answered`` stamps;
    ``busy_timeout`` is how long an operation waits for another process's lock before failing.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        lease_seconds: float = 60.0,
        clock: Clock = time.time,
        busy_timeout: float = BUSY_TIMEOUT_MS / 1000,
    ) -> None:
        self.path = Path(path)
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.busy_timeout = busy_timeout
        self._ready = False

    @contextlib.contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        """Turn SQLite's and the file system's errors into one OutboxError naming the file."""
        try:
            yield
        except OutboxError:
            raise
        except (sqlite3.Error, OSError) as exc:
            code = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
            raise OutboxError(str(self.path), operation, str(exc), code=code) from exc

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            self._create()
        db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA synchronous = FULL")
            yield db
        finally:
            db.close()

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))  # private from the start
        db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = WAL")  # persistent: set once, kept in the file
            db.executescript(_SCHEMA)  # idempotent, so concurrent first users are fine
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        finally:
            db.close()
        self._ready = True

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before reading so concurrent claimers serialise."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:  # SQLite already rolled back after some I/O errors
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- writing ----------------------------------------------------------------------------
    def add(
        self,
        *,
        key: str,
        record_id: str,
        domain: str | None,
        question: str,
        choices: Sequence[str],
        local_answer: str | None,
        reason: str,
    ) -> bool:
        """Store a fallen-back escalation; False if the key was already stored (kept as is)."""
        now = _timestamp(self.clock())
        with self._errors("store a question"), self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO outbox (key, record_id, domain, question, choices, local_answer, "
                "reason, status, attempts, created, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 1, ?, ?) ON CONFLICT (key) DO NOTHING",
                (key, record_id, domain, question, json.dumps(list(choices), ensure_ascii=False),
                 local_answer, reason, now, now),
            )  # fmt: skip
            return cursor.rowcount == 1

    def claim(self, owner: str) -> OutboxEntry | None:
        """Lease the oldest pending entry nobody holds, counting the attempt; or None."""
        now = self.clock()
        with self._errors("claim an entry"), self._transaction() as db:
            row = db.execute(
                "SELECT * FROM outbox WHERE status = 'pending' "
                "AND (lease_until IS NULL OR lease_until < ?) ORDER BY id LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE outbox SET lease_owner = ?, lease_until = ?, attempts = attempts + 1, "
                "updated = ? WHERE id = ?",
                (owner, now + self.lease_seconds, _timestamp(now), row["id"]),
            )
            claimed = db.execute("SELECT * FROM outbox WHERE id = ?", (row["id"],)).fetchone()
        return OutboxEntry.from_row(claimed)

    def complete(self, entry_id: int, owner: str, *, answer: str, model: str) -> bool:
        """Record the cloud's late answer; False if ``owner`` no longer holds the entry."""
        now = _timestamp(self.clock())
        return self._settle(
            "record an answer",
            entry_id,
            owner,
            "status = 'answered', cloud_answer = ?, cloud_model = ?, answered = ?, "
            "last_error = NULL",
            (answer, model, now),
        )

    def release(self, entry_id: int, owner: str, *, error: CloudError) -> bool:
        """Give the entry back after a failed try: pending again, or failed if ``permanent``."""
        status = EntryStatus.FAILED if error.permanent else EntryStatus.PENDING
        return self._settle(
            "release an entry",
            entry_id,
            owner,
            "status = ?, last_error = ?",
            (status.value, error.kind),
        )

    def _settle(
        self, operation: str, entry_id: int, owner: str, changes: str, values: tuple[Any, ...]
    ) -> bool:
        now = _timestamp(self.clock())
        with self._errors(operation), self._transaction() as db:
            cursor = db.execute(
                f"UPDATE outbox SET {changes}, lease_owner = NULL, lease_until = NULL, "
                "updated = ? WHERE id = ? AND lease_owner = ? AND status = 'pending'",
                (*values, now, entry_id, owner),
            )
            return cursor.rowcount == 1

    # -- reading ----------------------------------------------------------------------------
    def entries(self, *, status: EntryStatus | None = None) -> list[OutboxEntry]:
        with self._errors("list its entries"):
            return self._entries(status)

    def _entries(self, status: EntryStatus | None) -> list[OutboxEntry]:
        if not self.path.exists():
            return []  # reading creates nothing
        with self._connect() as db:
            if status is None:
                rows = db.execute("SELECT * FROM outbox ORDER BY id").fetchall()
            else:
                rows = db.execute(
                    "SELECT * FROM outbox WHERE status = ? ORDER BY id", (status.value,)
                ).fetchall()
        return [OutboxEntry.from_row(row) for row in rows]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((s.value for s in EntryStatus), 0)
        with self._errors("count its entries"):
            if not self.path.exists():
                return counts
            with self._connect() as db:
                for status, n in db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status"):
                    counts[status] = n
        return counts


# -- replay -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlushReport:
    answered: int
    failed: int
    pending: int  # left pending after this flush (including any another flusher holds)
    stopped_by: str | None  # the error kind that ended the flush early, if any

    def to_dict(self) -> dict[str, Any]:
        return {
            "answered": self.answered,
            "failed": self.failed,
            "pending": self.pending,
            "stopped_by": self.stopped_by,
        }


def flush(
    outbox: Outbox, client: CloudClient, *, force: bool = True, limit: int | None = None
) -> FlushReport:
    """Replay pending entries one by one, oldest first.

    A permanent error (the cloud refused the question, or its reply names no offered option)
    marks that entry failed and goes on; any other error means the cloud is not answering now,
    so the entry stays pending and the flush stops. ``force`` (the default, for an explicit
    flush) calls the cloud whatever state its circuit breaker is in. A failing outbox file raises
    :class:`~cloud_client.errors.OutboxError` (an entry in hand stays leased until its lease
    runs out, then is replayed).
    """
    owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    answered = failed = 0
    stopped_by = None
    while limit is None or answered + failed < limit:
        entry = outbox.claim(owner)
        if entry is None:
            break
        try:
            extension = fog_extension(domain=entry.domain, record_id=entry.record_id)
            reply = client.ask(
                entry.question, entry.choices, idempotency_key=entry.key, force=force,
                extension=extension,
            )  # fmt: skip
        except CloudError as exc:
            outbox.release(entry.id, owner, error=exc)
            if not exc.permanent:
                stopped_by = exc.kind
                break
            failed += 1
            continue
        if outbox.complete(entry.id, owner, answer=reply.letter, model=reply.model):
            answered += 1
    return FlushReport(answered, failed, outbox.counts()["pending"], stopped_by)
