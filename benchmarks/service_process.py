"""Run ``foggen serve`` in a subprocess on 127.0.0.1 (for the tests and the load benchmark)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

LISTENING = "foggen serve: listening on "


def wait_for(condition: Callable[[], bool], timeout: float = 120.0, poll: float = 0.05) -> None:
    """Poll ``condition`` until it holds; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(poll)


class ServiceProcess:
    """A started ``foggen serve``; ``url`` is known once it printed where it listens."""

    def __init__(self, process: subprocess.Popen[str], url: str, stderr: Path) -> None:
        self.process = process
        self.url = url
        self.stderr = stderr

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Poll /readyz until 200 (raise if the process dies or ``timeout`` passes)."""
        wait_for(self.ready, timeout, poll=0.1)

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"foggen serve exited: {self.stderr.read_text()[-2000:]}")
        try:
            return requests.get(f"{self.url}/readyz", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


@contextmanager
def serve(
    *args: str, env: Mapping[str, str] | None = None, log_dir: Path, ready: bool = True
) -> Iterator[ServiceProcess]:
    """Start ``foggen serve --port 0 ARGS``; SIGTERM it on exit (kill if it hangs)."""
    stderr = log_dir / f"serve-{time.monotonic_ns()}.stderr"
    command = [sys.executable, "-m", "foggen", "serve", "--port", "0", *args]
    with open(stderr, "w") as err:
        process = subprocess.Popen(
            command, env=dict(os.environ if env is None else env), stdout=subprocess.PIPE,
            stderr=err, text=True,
        )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith(LISTENING):
            raise RuntimeError(f"foggen serve did not start: {line!r} {stderr.read_text()}")
        service = ServiceProcess(process, line[len(LISTENING) :].strip(), stderr)
        if ready:
            service.wait_ready()
        yield service
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
