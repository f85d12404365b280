"""Escalation: a low-confidence question goes to the cloud, or is kept safe in the outbox.

The runtime decides the route; an :class:`Escalator` carries out ``route: cloud``:

- the privacy gate may keep the question on the device (``escalation: blocked_privacy``);
- the cloud answers within the budget (``answer_source: cloud``, ``escalation: sent``);
- or the local answer stands (``answer_source: edge_fallback``) and the question, as it would
  have been sent, goes to the outbox for a later flush (``escalation: queued``, ``error_kind``
  says why); ``escalation: failed`` when it could not even be queued.

Without an escalator (no cloud configured) the runtime answers ``escalation: unavailable``.
``cloud_client`` is imported lazily, so a runtime without a cloud never imports ``requests``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from cloud_client.errors import CloudError, OutboxError
from edge_runtime.fog import Trail, upstream_hops
from edge_runtime.question import Question
from edge_runtime.record import AnswerSource, Escalation, Hop

if TYPE_CHECKING:
    from cloud_client.client import CloudClient
    from cloud_client.config import CloudConfig
    from cloud_client.outbox import Outbox
    from cloud_client.privacy import Outgoing, PrivacyPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Escalated:
    """Where a question's answer came from; the decision record's escalation fields."""

    answer: str | None
    source: AnswerSource
    escalation: Escalation
    error_kind: str | None = None
    cloud_ms: float | None = None
    attempts: int = 0  # HTTP attempts made (logged and benchmarked; not in the record)
    hops: tuple[Hop, ...] = ()  # the upstream tiers that answered (the record's provenance)


def kept_local(letter: str | None) -> Escalated:
    return Escalated(letter, AnswerSource.EDGE, Escalation.NONE)


def no_cloud(letter: str | None) -> Escalated:
    return Escalated(letter, AnswerSource.EDGE_FALLBACK, Escalation.UNAVAILABLE)


def idempotency_key(question_id: str | None, text: str, choices: tuple[str, ...]) -> str:
    """One key per question: its id (when the caller gave one) and its content as sent."""
    from cloud_client.protocol import question_key

    seed = f"foggen-outbox-v1\0{question_id or ''}\0{question_key(text, choices)}"
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()


class Escalator:
    """The cloud client, the privacy policy and the outbox, used together for one question."""

    def __init__(
        self, client: CloudClient, *, privacy: PrivacyPolicy, outbox: Outbox | None
    ) -> None:
        self.client = client
        self.privacy = privacy
        self.outbox = outbox

    @classmethod
    def from_config(cls, config: CloudConfig, *, env: Mapping[str, str] | None = None) -> Escalator:
        """Client, privacy policy and outbox (``config.outbox`` or the default path)."""
        from cloud_client.client import CloudClient
        from cloud_client.outbox import Outbox, default_outbox_path
        from cloud_client.privacy import PrivacyPolicy

        path = config.outbox or default_outbox_path(os.environ if env is None else env)
        return cls(
            CloudClient(config),
            privacy=PrivacyPolicy.from_config(config),
            outbox=Outbox(path, lease_seconds=config.lease_seconds),
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Escalator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def escalate(
        self,
        question: Question,
        local_answer: str | None,
        *,
        record_id: str,
        trail: Trail | None = None,
    ) -> Escalated:
        """``trail``: the FogGen nodes the question passed through, this one last (sent upstream
        with the domain and ``record_id``, so a FogGen node there can refuse a loop)."""
        started = time.perf_counter()
        outcome = self._escalate(question, local_answer, record_id, trail or Trail())
        cloud_ms = round((time.perf_counter() - started) * 1000.0, 3)
        if outcome.hops and outcome.hops[0].ms is None:  # a plain cloud: its hop is the call
            outcome = replace(outcome, hops=(replace(outcome.hops[0], ms=cloud_ms),))
        return replace(outcome, cloud_ms=cloud_ms)

    def _escalate(
        self, question: Question, local_answer: str | None, record_id: str, trail: Trail
    ) -> Escalated:
        outgoing = self.privacy.check(question.text, question.choices, domain=question.domain)
        if outgoing.blocked_by is not None:
            log.info("%s stays on the device (privacy rule %s)", record_id, outgoing.blocked_by)
            return Escalated(local_answer, AnswerSource.EDGE_FALLBACK, Escalation.BLOCKED_PRIVACY)
        if outgoing.redacted:
            log.info("%s: redacted %s before sending", record_id, ", ".join(outgoing.redacted))
        key = idempotency_key(question.id, outgoing.question, outgoing.choices)
        extension = trail.extension(domain=question.domain, record_id=record_id)
        try:
            reply = self.client.ask(
                outgoing.question, outgoing.choices, idempotency_key=key, extension=extension
            )
        except CloudError as exc:
            escalation = self._queue(question, outgoing, key, local_answer, record_id, exc)
            return Escalated(
                local_answer, AnswerSource.EDGE_FALLBACK, escalation, exc.kind, None, exc.attempts
            )
        hops = upstream_hops(
            reply.provenance, url=self.client.url, model=reply.model, letter=reply.letter, ms=None
        )
        return Escalated(
            reply.letter, AnswerSource.CLOUD, Escalation.SENT, None, None, reply.attempts, hops
        )

    def _queue(
        self,
        question: Question,
        outgoing: Outgoing,
        key: str,
        local_answer: str | None,
        record_id: str,
        error: CloudError,
    ) -> Escalation:
        if self.outbox is None:
            log.warning("%s: cloud failed (%s), no outbox to queue it in", record_id, error)
            return Escalation.FAILED
        try:
            self.outbox.add(
                key=key,
                record_id=record_id,
                domain=question.domain,
                question=outgoing.question,
                choices=outgoing.choices,
                local_answer=local_answer,
                reason=error.kind,
            )
        except OutboxError as exc:  # damaged, unwritable, full or locked: the answer stands
            log.error("%s: cloud failed (%s), outbox not writable: %s", record_id, error.kind, exc)
            return Escalation.FAILED
        log.warning("%s: answered on the device, escalation queued (%s)", record_id, error)
        return Escalation.QUEUED
