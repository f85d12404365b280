"""SFT examples for the FogGen schema: JSONL in, token ids with a loss mask out (no torch).

One example is an MCQ with its confidence bucket and answer letter::

    {"id": "...", "domain": "math", "question": "...", "choices": ["...", "..."],
     "confidence": 0.75, "answer": "B"}

The prompt is exactly the edge runtime's, in the same :class:`~edge_runtime.prompt.ChatFormat`
(Gemma's turns, or the checkpoint tokenizer's own chat template, see :func:`chat_format_for`)
and tokenized in the same three spans: BOS if the tokenizer adds one, the prefix, the question
as plain text (a ``<start_of_turn>`` typed in a question stays text, as in llama.cpp), the turn
change. The target is the two schema lines and the format's end of turn (``<end_of_turn>``,
``<|im_end|>``); the loss is taken on the target only. Over-length examples are dropped and
counted, never truncated.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from converter.errors import ConverterError
from edge_runtime.errors import InvalidQuestionError
from edge_runtime.prompt import ChatFormat, chat_format, user_message
from edge_runtime.question import Question, make_question
from edge_runtime.schema import BUCKETS, AnswerSchema


class DataError(ConverterError, ValueError):
    kind = "training_data"


class Tokenizer(Protocol):
    """What we need of a Hugging Face tokenizer."""

    bos_token: Any
    eos_token: Any
    bos_token_id: Any

    def encode(
        self, text: str, *, add_special_tokens: bool = ..., split_special_tokens: bool = ...
    ) -> list[int]: ...


def chat_format_for(tokenizer: Tokenizer, *, architecture: str) -> ChatFormat:
    """The prompt format of a checkpoint's tokenizer, chosen as the runtime chooses it for the
    GGUF made from it: its ``chat_template``, else Gemma's turns (Gemma only); BOS added when
    the tokenizer adds it. ``architecture``: the config's model_type (``gemma3_text``, ...)."""
    probe = tokenizer.encode("x", add_special_tokens=True)
    adds_bos = tokenizer.bos_token_id is not None and probe[:1] == [tokenizer.bos_token_id]
    return chat_format(
        getattr(tokenizer, "chat_template", None),
        architecture=architecture,
        bos_token=tokenizer.bos_token or "",
        eos_token=tokenizer.eos_token or "",
        add_bos=adds_bos,
    )


@dataclass(frozen=True)
class Example:
    question: Question
    bucket: str  # one of edge_runtime.schema.BUCKETS
    letter: str

    def target_text(self) -> str:
        return AnswerSchema.for_options(len(self.question.choices)).render(self.bucket, self.letter)

    def to_json(self) -> str:
        q = self.question
        return json.dumps(
            {
                "id": q.id,
                "domain": q.domain,
                "question": q.text,
                "choices": list(q.choices),
                "confidence": float(self.bucket),
                "answer": self.letter,
            },
            ensure_ascii=False,
        )


def bucket_of(value: object) -> str:
    """The schema bucket text of 0.75, "0.75", 1, ... (exact bucket values only)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise DataError(f"confidence {value!r} is not a number") from exc
    for bucket in BUCKETS:
        if float(bucket) == number:
            return bucket
    raise DataError(f"confidence {value!r} is not one of {', '.join(BUCKETS)}")


def snap_bucket(fraction: float) -> str:
    """The bucket nearest to a fraction in [0, 1] (ties go to the lower bucket)."""
    return min(BUCKETS, key=lambda b: (abs(float(b) - fraction), float(b)))


def example_from_json(line: str, *, where: str = "") -> Example:
    try:
        obj = json.loads(line)
        question = make_question(
            obj["question"], obj["choices"], id=obj.get("id"), domain=obj.get("domain")
        )
        letter = obj["answer"]
        if letter not in question.letters:
            raise DataError(f"answer {letter!r} is not an offered letter")
        return Example(question, bucket_of(obj["confidence"]), letter)
    except (ValueError, KeyError, TypeError, InvalidQuestionError) as exc:
        raise DataError(
            f"{where}: bad example ({exc}) - each line needs question, choices, confidence, answer"
        ) from exc


def read_examples(path: str | Path) -> list[Example]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist - give a JSONL file of examples")
    with path.open(encoding="utf-8") as handle:
        return [
            example_from_json(line, where=f"{path}:{n}")
            for n, line in enumerate(handle, 1)
            if line.strip()
        ]


def write_examples(path: str | Path, examples: Iterable[Example]) -> None:
    Path(path).write_text("".join(e.to_json() + "\n" for e in examples), encoding="utf-8")


@dataclass(frozen=True)
class Encoded:
    """Token ids of prompt + target; the loss is taken on ``ids[n_prompt:]``."""

    ids: tuple[int, ...]
    n_prompt: int

    @property
    def target_positions(self) -> range:
        """Positions whose *next-token prediction* is scored (each predicts ids[p + 1])."""
        return range(self.n_prompt - 1, len(self.ids) - 1)


def prompt_ids(tokenizer: Tokenizer, question: Question, *, chat: ChatFormat) -> list[int]:
    """The runtime's prompt ids (``edge_runtime.prompt.PromptTokens``): the same ids llama.cpp
    evaluates (tested), the question's control-token lookalikes kept as text. ``chat``: the
    checkpoint's own format (:func:`chat_format_for`)."""
    bos = [int(tokenizer.bos_token_id)] if chat.add_bos else []
    return [
        *bos,
        *tokenizer.encode(chat.prefix, add_special_tokens=False),
        *tokenizer.encode(user_message(question), add_special_tokens=False,
                          split_special_tokens=True),
        *tokenizer.encode(chat.suffix, add_special_tokens=False),
    ]  # fmt: skip


def encode(tokenizer: Tokenizer, example: Example, *, chat: ChatFormat) -> Encoded:
    prompt = prompt_ids(tokenizer, example.question, chat=chat)
    target = list(tokenizer.encode(example.target_text(), add_special_tokens=False))
    target += tokenizer.encode(chat.end_of_turn, add_special_tokens=False)
    return Encoded(tuple(prompt + target), len(prompt))


@dataclass(frozen=True)
class EncodedSet:
    items: tuple[Encoded, ...]
    dropped: int  # longer than max_tokens: dropped, never truncated


def encode_all(
    tokenizer: Tokenizer,
    examples: Sequence[Example],
    max_tokens: int,
    *,
    chat: ChatFormat,
) -> EncodedSet:
    encoded = [encode(tokenizer, e, chat=chat) for e in examples]
    kept = tuple(e for e in encoded if len(e.ids) <= max_tokens)
    return EncodedSet(kept, len(encoded) - len(kept))


def length_batches(
    items: Sequence[Encoded],
    *,
    batch_size: int,
    seed: int,
    epoch: int,
    bucketed: bool = True,
    max_batch_tokens: int = 0,
) -> Iterator[list[Encoded]]:
    """Batches of similar length (sorted, cut, then the batch order shuffled per epoch), so
    padding stays small; with ``bucketed=False`` a plain shuffle. ``max_batch_tokens`` (padded
    width x rows, 0: no limit) splits batches of long examples: memory grows with tokens."""
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(items)))
    rng.shuffle(order)
    if bucketed:
        order.sort(key=lambda i: len(items[i].ids))
    batches: list[list[int]] = [[]]
    for i in order:
        batch = batches[-1]
        width = max([len(items[j].ids) for j in batch] + [len(items[i].ids)])
        full = len(batch) >= batch_size
        over = max_batch_tokens > 0 and width * (len(batch) + 1) > max_batch_tokens
        if batch and (full or over):
            batches.append([])
        batches[-1].append(i)
    if bucketed:
        rng.shuffle(batches)
    for batch in batches:
        if batch:
            yield [items[i] for i in batch]
