"""Sibling distillation through an OpenAI-compatible endpoint (stage 1 of the card).

``foggen chain --teacher http://host:8000/v1`` labels round 0 with a bigger model's answers:
each buffer question is asked ``n_samples`` times at the chain's temperature, sample k with
seed ``seed + k``, through :mod:`cloud_client` (timeouts, retries with backoff, Retry-After,
circuit breaker), ``group`` questions at a time. The fraction of correct answers is the label,
exactly as for self-samples. A reply that names no offered letter is a wrong sample, kept as
``"?"``. When a question's requests still fail, the step stops with :class:`TeacherError`;
the questions already answered stay in ``samples.jsonl`` and a re-run asks only the rest.
The key comes from ``FOGGEN_TEACHER_API_KEY`` and is never written anywhere.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tqdm import tqdm

from cloud_client.client import CloudClient
from cloud_client.config import CloudConfig
from cloud_client.errors import AnswerParseError, CloudConfigError, CloudError
from converter.chain.context import Context, hash_file
from converter.chain.sampling import finished_ids
from converter.errors import ConverterError
from edge_runtime.question import Question

KEY_ENV = "FOGGEN_TEACHER_API_KEY"
UNREADABLE = "?"


class TeacherError(ConverterError):
    """The teacher endpoint failed a question after its retries; the message says what to do."""


def is_endpoint(reference: str) -> bool:
    return reference.startswith(("http://", "https://"))


def teacher_config(url: str, model: str | None, max_tokens: int = 512) -> CloudConfig:
    """A patient client: a big teacher may take a minute per answer; still bounded."""
    try:
        return _patient_config(url, model, max_tokens)
    except CloudConfigError as exc:  # its message never repeats a secret
        raise TeacherError(
            f"--teacher: {str(exc).replace('FOGGEN_CLOUD_API_KEY', KEY_ENV)}"
        ) from exc


def _patient_config(url: str, model: str | None, max_tokens: int) -> CloudConfig:
    return CloudConfig(
        url=url, model=model, api_key=os.environ.get(KEY_ENV) or None, connect_timeout=10.0,
        read_timeout=120.0, deadline=300.0, retries=3, backoff=1.0, backoff_max=20.0,
        breaker_failures=10, breaker_cooldown=30.0, max_tokens=max_tokens,
    )  # fmt: skip


def ask_samples(
    client: CloudClient, q: Question, n: int, temperature: float, seed: int
) -> list[str]:
    """The teacher's ``n`` letters for ``q`` (``"?"`` for a reply without an offered letter)."""
    letters = []
    for k in range(n):
        try:
            answer = client.ask(q.text, q.choices, temperature=temperature, seed=seed + k)
            letters.append(answer.letter)
        except AnswerParseError:
            letters.append(UNREADABLE)
    return letters


def _row(q: Question, letters: list[str]) -> str:
    fraction = sum(letter == q.answer for letter in letters) / len(letters)
    return json.dumps({"id": q.id, "domain": q.domain, "samples": letters,
                       "fraction_correct": fraction})  # fmt: skip


def sample_with_endpoint(ctx: Context, r: int, url: str, buffer: list[Question]) -> dict[str, Any]:
    """Label ``buffer`` with the endpoint's samples; the manifest's facts (no key, ever)."""
    config = ctx.config
    path = ctx.round_dir(r) / "samples.jsonl"
    done = finished_ids(path)
    todo = [q for q in buffer if q.id not in done]
    seed = config.seed + r
    started = time.perf_counter()
    client_config = teacher_config(url, config.teacher_model, config.teacher_max_tokens)
    with CloudClient(client_config) as client:
        try:
            model = client.model_name() if todo else config.teacher_model
        except CloudError as exc:
            raise TeacherError(f"the teacher at {url} does not answer: {exc}") from exc
        pool = ThreadPoolExecutor(max_workers=config.group, thread_name_prefix="teacher")
        futures: list[Future[list[str]]] = [
            pool.submit(ask_samples, client, q, config.n_samples, config.temperature, seed)
            for q in todo
        ]
        bar = tqdm(total=len(buffer), initial=len(done), desc=f"teacher round {r}", unit="q",
                   disable=not ctx.progress)  # fmt: skip
        try:
            with path.open("a", encoding="utf-8") as out, bar:
                for q, future in zip(todo, futures, strict=True):
                    try:
                        letters = future.result()
                    except CloudError as exc:
                        raise TeacherError(
                            f"the teacher at {url} failed on question {q.id}: {exc}. "
                            f"{path} keeps the answered questions: run the same command again "
                            "to continue"
                        ) from exc
                    out.write(_row(q, letters) + "\n")
                    out.flush()
                    bar.update(1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    seconds = time.perf_counter() - started
    samples = [json.loads(line)["samples"] for line in path.read_text().splitlines()]
    return {
        "model": f"{url} ({model})",
        "teacher": "endpoint",
        "n": len(buffer),
        "resumed_after": len(done),
        "settings": {"n": config.n_samples, "temperature": config.temperature, "seed": seed},
        "unreadable_samples": sum(s.count(UNREADABLE) for s in samples),
        "questions_per_second": round(len(todo) / seconds, 3) if todo and seconds else None,
        "probe": None,
        "sha256": hash_file(path),
    }
