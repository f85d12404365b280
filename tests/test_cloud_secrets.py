"""The API key never shows: not in logs, errors, the decision record, the outbox or output.

The fault cloud echoes the request's Authorization header into its error bodies, the way a
careless server might, so a key that leaked through a quoted body would be caught here.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cloud_client.config import CloudConfig
from cloud_client.errors import CloudError
from edge_runtime.escalation import Escalator
from edge_runtime.question import make_question
from testkit.fault_cloud import Fault, fault_cloud

KEY = "sk-foggen-TEST-7f3a9c1e5b"
ECHOES = [
    Fault(status=401, body=b'{"error": "bad key:', echo_auth=True),
    Fault(status=500, body=b'{"error": "upstream said', echo_auth=True),
    Fault(status=400, body=b"rejected", echo_auth=True),
]


def _files_under(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())


@pytest.mark.parametrize("fault", ECHOES, ids=["401", "500", "400"])
def test_key_stays_out_of_logs_errors_and_the_outbox(
    fault: Fault,
    cloud_config: Callable[..., CloudConfig],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # everything, urllib3's request lines included
    question = make_question("Q?", ["a", "b"], id="q-secret")
    with fault_cloud([fault]) as cloud:
        config = cloud_config(cloud.url, model="m", api_key=KEY, retries=1)
        with Escalator.from_config(config) as escalator:
            result = escalator.escalate(question, "A", record_id="q-secret")
            with pytest.raises(CloudError) as info:
                escalator.client.ask("Q?", ["a", "b"])
    assert cloud.hits[0].headers["Authorization"] == f"Bearer {KEY}"  # it was used
    assert result.escalation.value == "queued"
    texts = [caplog.text, str(info.value), repr(info.value), repr(config), repr(result)]
    texts += [str(getattr(info.value, "detail", ""))]
    assert "[redacted key]" in str(info.value)  # the echoed body was quoted, scrubbed
    assert not [t for t in texts if KEY in t]
    assert KEY.encode() not in _files_under(tmp_path)  # outbox db, -wal and -shm files


def test_key_stays_out_of_the_cli_output_and_files(cli_env: dict[str, str], tmp_path: Path) -> None:
    outbox = ["--outbox", str(tmp_path / "o.sqlite3")]
    env = {**cli_env, "FOGGEN_CLOUD_API_KEY": KEY, "FOGGEN_LOG_LEVEL": "DEBUG"}
    foggen = [sys.executable, "-m", "foggen"]
    with fault_cloud(ECHOES[:1]) as cloud:
        runs = [
            subprocess.run(foggen + args, env=env, capture_output=True, text=True, timeout=600)
            for args in (
                ["ask", "Q?", "-c", "a", "-c", "b", "--json", "--force-route", "cloud",
                 "--cloud-url", cloud.url, *outbox],
                ["outbox", "list", "--json", *outbox],
                ["outbox", "flush", "--cloud-url", cloud.url, *outbox],
            )
        ]  # fmt: skip
    assert [r.returncode for r in runs] == [0, 0, 1]  # the flush stops at the 401
    assert '"escalation": "queued"' in runs[0].stdout and "auth" in runs[0].stdout
    assert "DEBUG" in runs[0].stderr  # the logs were on, and said things
    assert len(cloud.hits) == 2 and all(KEY in h.headers["Authorization"] for h in cloud.hits)
    for r in runs:
        assert KEY not in r.stdout and KEY not in r.stderr
    assert KEY.encode() not in _files_under(tmp_path)
