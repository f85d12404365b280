"""`foggen ask --cloud-url`, `foggen outbox list|flush` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.simulated_cloud import SimulatedCloud
from testkit.fault_cloud import refused_url

FOGGEN = [sys.executable, "-m", "foggen"]
QUESTION = ["Which gas do plants absorb?", "-c", "Oxygen", "-c", "Carbon dioxide", "-c", "Neon"]
FAST = {"FOGGEN_CLOUD_CONNECT_TIMEOUT": "0.25", "FOGGEN_CLOUD_BACKOFF": "0.02",
        "FOGGEN_CLOUD_BACKOFF_MAX": "0.1"}  # fmt: skip


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(FOGGEN + args, env=env, capture_output=True, text=True, timeout=600)


def lines(out: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_help_shows_the_cloud_flags_but_no_key_flag(cli_env: dict[str, str]) -> None:
    ask = " ".join(run(["ask", "--help"], cli_env).stdout.split())
    for text in ("--cloud-url", "--cloud-model", "--outbox", "FOGGEN_CLOUD_URL"):
        assert text in ask
    assert "api-key" not in ask and "API_KEY" not in ask
    outbox = run(["outbox", "--help"], cli_env).stdout
    assert "list" in outbox and "flush" in outbox


def test_ask_escalates_to_the_simulated_cloud(
    cli_env: dict[str, str], sim_cloud: SimulatedCloud, tmp_path: Path
) -> None:
    env = {**cli_env, "FOGGEN_CLOUD_URL": sim_cloud.url}  # the environment variable works
    out = run(["ask", *QUESTION, "--json", "--force-route", "cloud", "--id", "q1",
               "--outbox", str(tmp_path / "o.sqlite3")], env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    (record,) = lines(out)
    expected = sim_cloud.book.reply("Which gas do plants absorb?", ["Oxygen", "Carbon dioxide",
                                    "Neon"]).letter  # fmt: skip
    assert (record["answer"], record["answer_source"], record["escalation"]) == (
        expected, "cloud", "sent",
    )  # fmt: skip
    assert record["latency_ms"]["cloud"] > 0  # type: ignore[index]
    assert not (tmp_path / "o.sqlite3").exists()  # nothing failed, nothing queued


def test_offline_ask_queues_then_list_and_flush_replay(
    cli_env: dict[str, str], sim_cloud: SimulatedCloud, tmp_path: Path
) -> None:
    outbox = ["--outbox", str(tmp_path / "o.sqlite3")]
    env = {**cli_env, **FAST}
    with refused_url() as offline:
        out = run(["ask", *QUESTION, "--json", "--force-route", "cloud", "--id", "q2",
                   "--cloud-url", offline, *outbox], env)  # fmt: skip
        listed = run(["outbox", "list", "--json", *outbox], env)
        offline_flush = run(["outbox", "flush", "--cloud-url", offline, *outbox], env)
    assert out.returncode == 0, out.stderr
    (record,) = lines(out)
    assert (record["answer_source"], record["escalation"], record["error_kind"]) == (
        "edge_fallback", "queued", "connection",
    )  # fmt: skip
    assert record["answer"] == record["local_answer"]

    (entry,) = lines(listed)
    assert {"id", "status", "created", "attempts", "local_answer", "cloud_answer"} <= set(entry)
    assert (entry["status"], entry["record_id"], entry["attempts"], entry["cloud_answer"]) == (
        "pending", "q2", 1, None,
    )  # fmt: skip
    assert entry["local_answer"] == record["local_answer"]

    assert offline_flush.returncode == 1 and "0 answered" in offline_flush.stdout
    assert "pending" in offline_flush.stdout and "connection" in offline_flush.stdout

    flushed = run(["outbox", "flush", "--json", "--cloud-url", sim_cloud.url, *outbox], env)
    assert flushed.returncode == 0, flushed.stderr
    assert json.loads(flushed.stdout) == {"answered": 1, "failed": 0, "pending": 0,
                                          "stopped_by": None}  # fmt: skip
    (entry,) = lines(run(["outbox", "list", "--json", "--status", "answered", *outbox], env))
    expected = sim_cloud.book.reply("Which gas do plants absorb?",
                                    ["Oxygen", "Carbon dioxide", "Neon"]).letter  # fmt: skip
    assert (entry["cloud_answer"], entry["attempts"]) == (expected, 3)  # live + 2 flushes
    human = run(["outbox", "list", *outbox], env).stdout
    assert "answered" in human and f"cloud {expected}" in human and "Which gas" in human


def test_cloud_settings_errors_are_usage_errors(cli_env: dict[str, str], tmp_path: Path) -> None:
    outbox = ["--outbox", str(tmp_path / "o.sqlite3")]
    no_url = run(["outbox", "flush", *outbox], cli_env)
    assert no_url.returncode == 2 and "FOGGEN_CLOUD_URL" in no_url.stderr
    bad = run(["ask", *QUESTION, "--cloud-url", "ftp://host/v1", *outbox], cli_env)
    assert bad.returncode == 2 and "not an http" in bad.stderr
    bad_env = run(["ask", *QUESTION], {**cli_env, "FOGGEN_CLOUD_URL": "http://h/v1",
                                       "FOGGEN_CLOUD_RETRIES": "x"})  # fmt: skip
    assert bad_env.returncode == 2 and "FOGGEN_CLOUD_RETRIES" in bad_env.stderr
    for out in (no_url, bad, bad_env):
        assert "Traceback" not in out.stderr
    empty = run(["outbox", "list", "--json", *outbox], cli_env)
    assert empty.returncode == 0 and empty.stdout == ""
