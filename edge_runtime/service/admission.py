"""The bounded queue in front of the one model: admit or refuse at once, never pile up.

At most ``queue_size + 1`` requests are admitted (the one being answered and those waiting);
one more is refused with :class:`QueueFullError` (HTTP 429) without touching a thread. The
admitted work runs on a fixed pool of that many threads, where ``EdgeRuntime``'s lock
serialises the model and an escalation waits for the cloud outside that lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from edge_runtime.service.errors import QueueFullError

T = TypeVar("T")


class Admission:
    """Used from the event loop only (the counter needs no lock there)."""

    def __init__(self, *, queue_size: int, retry_after: int) -> None:
        self.capacity = queue_size + 1
        self.retry_after = retry_after
        self.admitted = 0
        self._pool = ThreadPoolExecutor(max_workers=self.capacity, thread_name_prefix="answer")

    async def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the pool, or raise QueueFullError if ``capacity`` are admitted."""
        return await asyncio.wrap_future(self.submit(work))

    def submit(self, work: Callable[[], T]) -> Future[T]:
        """Start ``work`` on the pool (from the event loop), or raise QueueFullError."""
        if self.admitted >= self.capacity:
            raise QueueFullError(self.capacity, self.retry_after)
        self.admitted += 1
        loop = asyncio.get_running_loop()
        future = self._pool.submit(work)
        # released when the work ends, not when the request does: a client that hangs up
        # must not free a slot whose thread is still busy
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._release))
        return future

    def _release(self) -> None:
        self.admitted -= 1

    def shutdown(self) -> None:
        """Wait for admitted work to finish (uvicorn has already drained the requests)."""
        self._pool.shutdown(wait=True)
