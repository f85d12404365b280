"""What goes over the wire: the chat request for one MCQ, and reading the letter back.

Pure functions on plain text and choices (no ``edge_runtime`` types). All instructions are in
the user turn, because some chat formats drop system messages. Sampling is explicit:
temperature 0 (a distillation teacher asks for T > 0 with a seed per sample), and
``repeat_penalty: 1.0`` for llama.cpp's server (its default is 1.1; other servers ignore the
field).
"""

from __future__ import annotations

import hashlib
import json
import re
import string
import unicodedata
from collections.abc import Sequence
from typing import Any

from cloud_client.errors import AnswerParseError

LETTERS = string.ascii_uppercase
EXTENSION = "foggen"  # FogGen's field in requests and replies (other servers ignore it)
MAX_HOPS_READ = 16  # provenance entries kept from a reply
HOP_FIELDS = {"node": str, "model": str, "route": str, "signal": str, "answer": str}
HOP_NUMBERS = ("score", "ms")
HOP_TEXT_CHARS = 128

_QUESTION_HEADER = "Answer the multiple-choice question below.\n\nQuestion:\n"
_OPTIONS_HEADER = "\n\nOptions:\n"
_INSTRUCTION = (
    '\n\nReply with one line of the form "Final answer: <LETTER>", where <LETTER> is one of '
)

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FINAL = re.compile(r"final\s+answer\s*(?:is)?\s*[:：]?", re.IGNORECASE)
_WRAPPERS = "*_`'\"[]{} \t"
# "B", "(B)", "B.", "B)", "B: text", "B. text" - a letter standing alone, then maybe its text
_LETTER = re.compile(r"\(?([A-Za-z])\)?(?:[.):]\s*(.*))?", re.DOTALL)


def user_message(question: str, choices: Sequence[str]) -> str:
    """The whole prompt, as one user turn."""
    letters = LETTERS[: len(choices)]
    options = "\n".join(f"{letter}. {text}" for letter, text in zip(letters, choices, strict=True))
    return (
        f"{_QUESTION_HEADER}{question}{_OPTIONS_HEADER}{options}{_INSTRUCTION}{', '.join(letters)}."
    )


def read_user_message(message: str) -> tuple[str, tuple[str, ...]] | None:
    """The inverse of :func:`user_message` (for servers that answer FogGen prompts), or None."""
    if not message.startswith(_QUESTION_HEADER) or _INSTRUCTION not in message:
        return None
    body = message[len(_QUESTION_HEADER) : message.rindex(_INSTRUCTION)]
    question, sep, options = body.rpartition(_OPTIONS_HEADER)
    if not sep or not options.startswith("A. "):
        return None
    choices, rest = [], options[3:]
    for letter in LETTERS[1:]:
        text, found, rest_after = rest.partition(f"\n{letter}. ")
        if not found:
            break
        choices.append(text)
        rest = rest_after
    choices.append(rest)
    return question, tuple(choices)


def chat_request(
    question: str,
    choices: Sequence[str],
    *,
    model: str,
    max_tokens: int,
    temperature: float = 0.0,
    seed: int | None = None,
    extension: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body for ``POST {base}/chat/completions`` (greedy unless a teacher samples);
    ``extension`` goes in the ``foggen`` field, which a FogGen node reads and others ignore."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": user_message(question, choices)}],
        "temperature": temperature,
        "repeat_penalty": 1.0,
        "max_tokens": max_tokens,
        "stream": False,
    }
    if seed is not None:
        body["seed"] = seed
    if extension is not None:
        body[EXTENSION] = extension
    return body


def fog_extension(
    *, domain: str | None, record_id: str | None, path: Sequence[str] = ()
) -> dict[str, Any]:
    """The ``foggen`` field of a request: the question's domain, the sender's record id and
    the FogGen nodes it passed through (see ``edge_runtime.fog``)."""
    return {"domain": domain, "id": record_id, "path": list(path), "hops": len(path)}


def _normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def question_key(question: str, choices: Sequence[str]) -> str:
    """sha256 of the normalised question and options: the same MCQ gives the same key."""
    canonical = json.dumps([_normalise(question), [_normalise(c) for c in choices]])
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def completion_text(payload: object) -> str:
    """``choices[0].message.content`` of a chat completion; ValueError names what is missing."""
    try:
        content = payload["choices"][0]["message"]["content"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"no choices[0].message.content ({type(exc).__name__}: {exc})") from exc
    if not isinstance(content, str):
        raise ValueError(f"message content is {type(content).__name__}, not text")
    return content


def reply_provenance(payload: object) -> tuple[dict[str, Any], ...]:
    """The hops a FogGen node reports in ``foggen.record.provenance``, sanitised (known fields
    only, text cut to 128 characters, at most 16 hops); empty for any other server."""
    try:
        hops = payload[EXTENSION]["record"]["provenance"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return ()
    if not isinstance(hops, list):
        return ()
    return tuple(_hop(entry) for entry in hops[:MAX_HOPS_READ] if isinstance(entry, dict))


def _hop(entry: dict[str, Any]) -> dict[str, Any]:
    hop: dict[str, Any] = {}
    for name in HOP_FIELDS:
        value = entry.get(name)
        hop[name] = value[:HOP_TEXT_CHARS] if isinstance(value, str) else None
    for name in HOP_NUMBERS:
        value = entry.get(name)
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value == value
        hop[name] = float(value) if ok else None  # type: ignore[arg-type]
    return hop


def model_ids(payload: object) -> list[str]:
    """The model ids of a ``GET /models`` reply (``{"data": [{"id": ...}, ...]}``)."""
    try:
        entries = payload["data"]  # type: ignore[index]
        return [entry["id"] for entry in entries if isinstance(entry.get("id"), str)]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"no data[].id ({type(exc).__name__}: {exc})") from exc


def parse_letter(text: str, choices: Sequence[str]) -> str:
    """The offered letter a reply names, read robustly; never a guess.

    Looks at what follows the last "Final answer" (else at the whole reply): a letter standing
    alone ("B", "(B)", "**B**", "B. text"; lower case only right after "Final answer"), else
    exactly the text of one option. A letter that is not offered raises
    :class:`AnswerParseError` with ``letter`` set; anything else raises it without.
    """
    letters = LETTERS[: len(choices)]
    reply = _THINK.sub("", text)
    finals = list(_FINAL.finditer(reply))
    segment = reply[finals[-1].end() :] if finals else reply
    segment = segment.strip().split("\n", 1)[0] if finals else segment.strip()
    candidate = segment.strip(_WRAPPERS).rstrip(".").strip(_WRAPPERS)
    match = _LETTER.fullmatch(candidate)
    if match is None or (match[1].islower() and (match[2] or not finals)):
        by_text = {_normalise(c).casefold(): x for x, c in zip(letters, choices, strict=True)}
        if _normalise(candidate).casefold() in by_text:
            return by_text[_normalise(candidate).casefold()]
        raise AnswerParseError(_describe(reply), n_options=len(choices))
    letter = match[1].upper()
    if letter not in letters:
        raise AnswerParseError(
            f"it names {letter}, which is not offered", letter=letter, n_options=len(choices)
        )
    return letter


def _describe(reply: str) -> str:
    if not reply.strip():
        return "the reply is empty"
    return f"no answer line in a {len(reply)}-character reply"
