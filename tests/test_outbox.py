"""The outbox: durable, idempotent, leased, replayable, and safe against SIGKILL."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.simulated_cloud import SimulatedCloudConfig, simulated_cloud
from cloud_client.client import CloudClient
from cloud_client.config import CloudConfig
from cloud_client.errors import AnswerParseError, CloudConnectionError, CloudError, OutboxError
from cloud_client.outbox import EntryStatus, Outbox, default_outbox_path, flush
from edge_runtime.escalation import Escalator
from edge_runtime.question import make_question
from edge_runtime.record import AnswerSource, Escalation
from testkit.fault_cloud import Fault, fault_cloud, refused_url

Build = Callable[..., CloudConfig]
HANG_GUARD = 120  # seconds; only against hangs, never a timing assertion
LEASE = 60.0
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


class FakeClock:
    """Unix time that moves only when the test moves it."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def add(outbox: Outbox, n: int, *, prefix: str = "k") -> None:
    for i in range(n):
        outbox.add(key=f"{prefix}{i}", record_id=f"r{i}", domain="math",
                   question=f"What is {i} + 1?", choices=[str(i + 1), str(i + 2)],
                   local_answer="B", reason="timeout")  # fmt: skip


def test_entries_keep_what_was_queued(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    assert outbox.entries() == [] and not outbox.path.exists()  # reading creates nothing
    add(outbox, 2)
    first, second = outbox.entries()
    data = first.to_dict()
    assert {"id", "status", "created", "attempts", "local_answer", "cloud_answer"} <= set(data)
    assert (data["status"], data["attempts"], data["local_answer"], data["cloud_answer"]) == (
        "pending", 1, "B", None,
    )  # fmt: skip
    assert data["choices"] == ["1", "2"] and data["reason"] == "timeout"
    assert data["created"].endswith("Z") and second.id > first.id
    assert outbox.counts() == {"pending": 2, "answered": 0, "failed": 0}


def test_one_entry_per_idempotency_key(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    assert outbox.add(key="same", record_id="r1", domain=None, question="Q?", choices=["a", "b"],
                      local_answer="A", reason="timeout")  # fmt: skip
    assert not outbox.add(key="same", record_id="r2", domain=None, question="Q?",
                          choices=["a", "b"], local_answer="B", reason="auth")  # fmt: skip
    (entry,) = outbox.entries()
    assert (entry.record_id, entry.local_answer) == ("r1", "A")  # the first one is kept


def test_the_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "data" / "o.sqlite3")
    add(outbox, 1)
    assert stat.S_IMODE(outbox.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(outbox.path.parent.stat().st_mode) == 0o700
    with sqlite3.connect(outbox.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1


def test_default_path_is_user_data_not_cache(tmp_path: Path) -> None:
    home = Path.home()
    assert default_outbox_path({}) == home / ".local/share/foggen/outbox.sqlite3"
    xdg = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "XDG_CACHE_HOME": str(tmp_path / "c")}
    assert default_outbox_path(xdg) == tmp_path / "xdg/foggen/outbox.sqlite3"
    assert default_outbox_path({**xdg, "FOGGEN_HOME": str(tmp_path / "fh")}) == (
        tmp_path / "fh/outbox.sqlite3"
    )


def test_claims_lease_one_entry_to_one_owner(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3", lease_seconds=60)
    add(outbox, 2)
    a = outbox.claim("a")
    b = outbox.claim("b")
    assert a is not None and b is not None and a.id != b.id
    assert a.attempts == 2  # the live escalation, then this claim
    assert outbox.claim("c") is None  # both are leased
    assert not outbox.complete(a.id, "b", answer="C", model="m")  # not b's lease
    assert outbox.complete(a.id, "a", answer="C", model="m")
    assert not outbox.complete(a.id, "a", answer="D", model="m")  # answered stays answered
    entry = outbox.entries(status=EntryStatus.ANSWERED)[0]
    assert (entry.cloud_answer, entry.cloud_model, entry.answered is not None) == ("C", "m", True)


def test_an_expired_lease_can_be_claimed_again(tmp_path: Path) -> None:
    clock = FakeClock()
    outbox = Outbox(tmp_path / "o.sqlite3", lease_seconds=LEASE, clock=clock)
    add(outbox, 1)
    first = outbox.claim("dead-flusher")
    assert first is not None and outbox.claim("other") is None
    clock.advance(LEASE)
    assert outbox.claim("other") is None  # held up to and including its last instant
    clock.advance(0.001)
    again = outbox.claim("other")
    assert again is not None and again.id == first.id and again.attempts == 3
    assert not outbox.complete(first.id, "dead-flusher", answer="A", model="m")  # lease lost
    assert outbox.complete(again.id, "other", answer="A", model="m")


def test_stamps_come_from_the_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    outbox = Outbox(tmp_path / "o.sqlite3", clock=clock)
    add(outbox, 1)
    clock.advance(90.5)
    entry = outbox.claim("x")
    assert entry is not None
    assert (entry.created, entry.updated) == (
        "2023-11-14T22:13:20.000000Z", "2023-11-14T22:14:50.500000Z",
    )  # fmt: skip
    clock.advance(3600)
    assert outbox.complete(entry.id, "x", answer="A", model="m")
    (done,) = outbox.entries()
    assert done.answered == done.updated == "2023-11-14T23:14:50.500000Z"
    assert done.created == entry.created


def test_release_after_a_permanent_error_marks_failed(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    add(outbox, 2)
    a, b = outbox.claim("x"), outbox.claim("x")
    assert a is not None and b is not None
    assert outbox.release(a.id, "x", error=AnswerParseError("no letter", n_options=2))
    assert outbox.release(b.id, "x", error=CloudConnectionError("u", "refused"))
    states = {e.id: (e.status.value, e.last_error) for e in outbox.entries()}
    assert states == {a.id: ("failed", "parse_error"), b.id: ("pending", "connection")}


def test_flush_replays_everything_to_a_cloud_that_is_back(
    tmp_path: Path, cloud_config: Build
) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    add(outbox, 5)
    with simulated_cloud() as cloud, CloudClient(cloud_config(cloud.url)) as client:
        report = flush(outbox, client)
    assert report.to_dict() == {"answered": 5, "failed": 0, "pending": 0, "stopped_by": None}
    entries = outbox.entries()
    expected = [cloud.book.reply(e.question, e.choices).letter for e in entries]
    assert [e.cloud_answer for e in entries] == expected
    assert {e.cloud_model for e in entries} == {"simulated-cloud"}
    assert sorted(cloud.stats.idempotency_keys) == sorted(e.key for e in entries)


def test_flush_stops_while_the_cloud_is_down_and_fails_only_permanent_errors(
    tmp_path: Path, cloud_config: Build
) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    add(outbox, 3)
    with refused_url() as url, CloudClient(cloud_config(url, retries=0)) as client:
        report = flush(outbox, client)
    assert (report.answered, report.pending, report.stopped_by) == (0, 3, "connection")
    assert [e.attempts for e in outbox.entries()] == [2, 1, 1]  # stopped after the first
    not_offered = Fault(content="Final answer: Z")
    with fault_cloud([not_offered, Fault()]) as cloud, CloudClient(cloud_config(cloud.url)) as c:
        report = flush(outbox, c)
    assert report.to_dict() == {"answered": 2, "failed": 1, "pending": 0, "stopped_by": None}
    assert [e.status.value for e in outbox.entries()] == ["failed", "answered", "answered"]


def test_an_explicit_flush_goes_through_an_open_breaker(
    tmp_path: Path, cloud_config: Build
) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    add(outbox, 1)
    with fault_cloud([Fault(status=503, body=b"{}"), Fault()]) as cloud:
        config = cloud_config(cloud.url, retries=0, breaker_failures=1)
        with CloudClient(config) as client:
            with pytest.raises(ConnectionError):  # a 503 is a CloudServerError, a ConnectionError
                client.ask("Q?", ["a", "b"])  # opens the breaker
            assert flush(outbox, client, force=False).stopped_by == "circuit_open"
            assert flush(outbox, client).answered == 1  # force, the default
    assert len(cloud.hits) == 2


FLUSHER = """
import sys
from cloud_client.client import CloudClient
from cloud_client.config import CloudConfig
from cloud_client.outbox import Outbox, flush
url, path, lease = sys.argv[1], sys.argv[2], float(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()  # start together
with CloudClient(CloudConfig(url=url)) as client:
    print(flush(Outbox(path, lease_seconds=lease), client).answered, flush=True)
"""


def _flusher(url: str, path: Path, *, lease: float) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", FLUSHER, url, str(path), str(lease)]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _start(*procs: subprocess.Popen[str]) -> None:
    """Once every flusher has imported everything, let them all go at once."""
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()


def test_concurrent_flusher_processes_never_double_send(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    outbox = Outbox(path)
    add(outbox, 40)
    with simulated_cloud(SimulatedCloudConfig(latency_ms=20)) as cloud:
        procs = [_flusher(cloud.url, path, lease=60) for _ in range(3)]
        _start(*procs)
        answered = [int(p.communicate(timeout=HANG_GUARD)[0]) for p in procs]
    assert sum(answered) == 40 and all(p.returncode == 0 for p in procs)
    assert sum(1 for n in answered if n > 0) >= 2  # they really ran side by side
    assert sorted(cloud.stats.idempotency_keys) == sorted(e.key for e in outbox.entries())
    assert outbox.counts() == {"pending": 0, "answered": 40, "failed": 0}


# -- crash safety -----------------------------------------------------------------------------
WRITER = """
import sys
from cloud_client.outbox import Outbox
outbox = Outbox(sys.argv[1])
for i in range(int(sys.argv[2])):
    outbox.add(key=f"k{i}", record_id=f"r{i}", domain="law", question=f"Question {i}?",
               choices=["yes", "no"], local_answer="A", reason="connection")
    print(i, flush=True)
"""


def _consistent(path: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM outbox ORDER BY id").fetchall()


def _kill_after(proc: subprocess.Popen[str], lines: int) -> list[str]:
    assert proc.stdout is not None
    seen = [proc.stdout.readline() for _ in range(lines)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=HANG_GUARD)
    return seen


def test_sigkill_while_writing_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    path, total = tmp_path / "o.sqlite3", 300
    committed: set[str] = set()
    for lines in (40, 90):  # kill twice, at different points, mid-stream
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(total)],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        committed |= {f"k{int(line)}" for line in _kill_after(proc, lines)}
        assert proc.returncode == -signal.SIGKILL
        rows = _consistent(path)
        keys = [row["key"] for row in rows]
        assert committed <= set(keys) and len(keys) == len(set(keys))
        assert all(row["question"] and row["choices"] == '["yes", "no"]' for row in rows)
    done = subprocess.run([sys.executable, "-c", WRITER, str(path), str(total)],
                          capture_output=True, timeout=HANG_GUARD)  # fmt: skip
    assert done.returncode == 0
    keys = [row["key"] for row in _consistent(path)]
    assert sorted(keys) == sorted(f"k{i}" for i in range(total))  # complete, each once


def test_sigkill_while_flushing_duplicates_nothing_already_answered(tmp_path: Path) -> None:
    path, total = tmp_path / "o.sqlite3", 60
    add(Outbox(path), total)
    with simulated_cloud(SimulatedCloudConfig(latency_ms=20)) as cloud:
        proc = _flusher(cloud.url, path, lease=LEASE)  # the real clock: it never runs out here
        _start(proc)
        deadline = time.monotonic() + HANG_GUARD
        while cloud.stats.requests < 20 and time.monotonic() < deadline:
            time.sleep(0.005)  # waits for the flusher's progress, not for a lease
        os.kill(proc.pid, signal.SIGKILL)  # most likely in the middle of a request
        proc.wait(timeout=HANG_GUARD)
        rows = _consistent(path)
        answered_before = {r["key"] for r in rows if r["status"] == "answered"}
        assert 15 <= len(answered_before) < total
        assert all(r["cloud_answer"] for r in rows if r["status"] == "answered")
        held = [r["key"] for r in rows if r["lease_owner"] is not None]
        assert len(held) <= 1  # at most the entry in flight at the kill
        sent_before = len(cloud.stats.idempotency_keys)
        clock = FakeClock(time.time())
        outbox = Outbox(path, clock=clock)
        with CloudClient(CloudConfig(url=cloud.url)) as client:
            if held:  # the dead flusher's lease still holds its entry back...
                assert flush(outbox, client).pending == 1
            clock.advance(LEASE + 1)  # ...until it runs out
            report = flush(outbox, client)
        resent = cloud.stats.idempotency_keys[sent_before:]
    assert report.pending == 0 and outbox.counts()["answered"] == total
    assert not answered_before & set(resent)  # nothing answered was sent again
    sends = Counter(cloud.stats.idempotency_keys)
    assert set(sends) == {r["key"] for r in _consistent(path)}
    assert sum(n - 1 for n in sends.values()) <= 1  # at most the one in flight at the kill


# -- failures of the file itself --------------------------------------------------------------
def _corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "o.sqlite3"
    path.write_bytes(b"this is not an SQLite database\n" * 256)
    return path


def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "plain-file").write_text("")
    return tmp_path / "plain-file" / "o.sqlite3"  # its "directory" cannot be made


OPERATIONS: dict[str, Callable[[Outbox], object]] = {
    "add": lambda o: add(o, 1),
    "claim": lambda o: o.claim("x"),
    "complete": lambda o: o.complete(1, "x", answer="A", model="m"),
    "release": lambda o: o.release(1, "x", error=CloudConnectionError("u", "refused")),
    "entries": lambda o: o.entries(),
    "counts": lambda o: o.counts(),
}


ERRORS_SAY = {
    "add": "store a question",
    "claim": "claim an entry",
    "complete": "record an answer",
    "release": "release an entry",
    "entries": "list its entries",
    "counts": "count its entries",
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_damaged_file_raises_an_outbox_error(tmp_path: Path, operation: str) -> None:
    path = _corrupt(tmp_path)
    with pytest.raises(OutboxError) as caught:
        OPERATIONS[operation](Outbox(path))
    error = caught.value
    assert isinstance(error, CloudError) and isinstance(error, OSError)
    assert isinstance(error.__cause__, sqlite3.DatabaseError)
    assert error.path == str(path) and str(path) in str(error)
    assert "--outbox / FOGGEN_OUTBOX" in str(error) and "move it aside" in str(error)
    assert (error.operation, error.kind) == (ERRORS_SAY[operation], "outbox")
    if sys.version_info >= (3, 11):
        assert error.code == "SQLITE_NOTADB"


@pytest.mark.parametrize("operation", ["add", "claim", "complete", "release"])
def test_an_unwritable_path_raises_an_outbox_error(tmp_path: Path, operation: str) -> None:
    path = _under_a_file(tmp_path)
    with pytest.raises(OutboxError) as caught:
        OPERATIONS[operation](Outbox(path))
    error = caught.value
    assert isinstance(error.__cause__, FileExistsError) and error.code is None  # from mkdir
    assert str(path) in str(error) and "writable" in str(error)
    assert Outbox(path).entries() == [] and Outbox(path).counts()["pending"] == 0  # no file yet


def test_a_database_locked_past_the_busy_timeout_raises_an_outbox_error(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3", busy_timeout=0.05)
    add(outbox, 1, prefix="a")
    other = sqlite3.connect(outbox.path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")  # another process writing for a long time
        for operation in ("add", "claim"):
            with pytest.raises(OutboxError) as caught:
                OPERATIONS[operation](outbox)
            assert "locked" in str(caught.value) and str(outbox.path) in str(caught.value)
            if sys.version_info >= (3, 11):
                assert caught.value.code == "SQLITE_BUSY"
        assert len(outbox.entries()) == 1  # WAL: readers still read
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert outbox.claim("x") is not None  # and writing works again once it lets go


@pytest.mark.parametrize("broken", [_corrupt, _under_a_file])
def test_escalation_falls_back_when_the_outbox_cannot_be_written(
    tmp_path: Path,
    cloud_config: Build,
    caplog: pytest.LogCaptureFixture,
    broken: Callable[[Path], Path],
) -> None:
    path = broken(tmp_path)
    question = make_question("What is 2 + 2?", ["3", "4"], id="q1", domain="math")
    with refused_url() as url:
        config = cloud_config(url, retries=0, outbox=str(path))
        with caplog.at_level(logging.ERROR), Escalator.from_config(config) as escalator:
            outcome = escalator.escalate(question, "B", record_id="r1")
    assert (outcome.answer, outcome.source, outcome.escalation, outcome.error_kind) == (
        "B", AnswerSource.EDGE_FALLBACK, Escalation.FAILED, "connection",
    )  # fmt: skip
    assert "outbox not writable" in caplog.text and str(path) in caplog.text
