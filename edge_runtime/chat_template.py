"""Render a model's own chat template (``tokenizer.chat_template``) into the FogGen prompt.

Templates come inside downloaded files, so they are untrusted code: they run in jinja2's
``ImmutableSandboxedEnvironment`` (no attribute access to internals, no mutation of the values
passed in, ranges capped), as transformers does, with the same options and helpers
(``raise_exception``, ``strftime_now``, a ``tojson`` that keeps non-ASCII text). Stricter than
jinja2's default: reaching for an internal (``''.__class__``) is an error at once rather than a
silent empty value, and ``*`` / ``**`` cannot build a string or number too large to render.
Whatever a template raises becomes a :class:`ChatTemplateError`.

The conversation is rendered once, with a sentinel as the user message, and split there: the
text before is the shared prefix (system prompt included), the text after is the turn change
to the assistant. The question itself is never passed through the template, so a template can
neither see nor rewrite user text, and the runtime tokenizes that text with control tokens off.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from edge_runtime.errors import ChatTemplateError

MAX_TEMPLATE_CHARS = 100_000  # the largest templates in common use are ~10k characters
MAX_RENDERED_CHARS = 50_000  # the FogGen conversation renders to well under 2k characters
MAX_EXPONENT = 1_000  # ``**`` beyond this (10**10**9) would compute for minutes
USER_SENTINEL = "FOGGEN-USER-MESSAGE-7f3a"
ANSWER_SENTINEL = "FOGGEN-ASSISTANT-MESSAGE-7f3a"


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(f"the template refused the conversation: {message}")


def _tojson(value: Any, indent: int | None = None, **_: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _bounded_binop(operator: str, left: Any, right: Any) -> Any:
    """``*`` and ``**`` with their results' size bounded (the rest as Python does them)."""
    from jinja2.exceptions import SecurityError

    if operator == "**":
        if isinstance(right, int) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"an exponent of {right} is beyond the sandbox's limit")
        return left**right
    for sequence, count in ((left, right), (right, left)):
        sized = isinstance(sequence, str | list | tuple) and isinstance(count, int)
        if sized and len(sequence) * count > MAX_RENDERED_CHARS:
            raise SecurityError("a repetition longer than the sandbox's limit")
    return left * right


def _environment():  # noqa: ANN202 - a jinja2 environment, imported lazily
    from jinja2.exceptions import SecurityError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            return _bounded_binop(operator, left, right)

        def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
            kind = type(obj).__name__
            raise SecurityError(f"access to attribute {attribute!r} of a {kind} is unsafe")

    env = Sandbox(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def render(
    template: str, messages: list[dict[str, str]], *, generation: bool, **tokens: str
) -> str:
    """The template's text for ``messages`` (``tokens``: bos_token, eos_token)."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise ChatTemplateError(f"it has {len(template)} characters (limit {MAX_TEMPLATE_CHARS})")
    try:
        compiled = _environment().from_string(template)
        text = compiled.render(messages=messages, add_generation_prompt=generation, **tokens)
    except ChatTemplateError:
        raise
    except Exception as exc:  # untrusted code may raise anything (SecurityError, OverflowError)
        raise ChatTemplateError(f"rendering failed ({type(exc).__name__}: {exc})") from exc
    if len(text) > MAX_RENDERED_CHARS:
        raise ChatTemplateError(f"it rendered {len(text)} characters for one short question")
    return text


def split_conversation(
    template: str, system: str, *, bos_token: str, eos_token: str
) -> tuple[str, str, str]:
    """(prefix, suffix, end of the assistant's turn) of the FogGen conversation.

    The system prompt goes in a system message; a template that refuses the system role (raises)
    or leaves it out gets it at the start of the user message instead (what Gemma's own
    template does). Either way the rendering must hold the system prompt, then the user message
    once, verbatim.
    """
    tokens = {"bos_token": bos_token, "eos_token": eos_token}
    user = {"role": "user", "content": USER_SENTINEL}
    merged = {"role": "user", "content": f"{system}\n\n{USER_SENTINEL}"}
    misplaced = ChatTemplateError(
        "it does not place the system prompt and the user message verbatim, in order"
    )
    error = misplaced
    for messages in ([{"role": "system", "content": system}, user], [merged]):
        try:
            text = render(template, messages, generation=True, **tokens)
        except ChatTemplateError as exc:
            error = exc
            continue
        if text.count(USER_SENTINEL) == 1 and system in text.split(USER_SENTINEL)[0]:
            break
        error = misplaced
    else:
        raise error
    prefix, suffix = text.split(USER_SENTINEL)
    answered = [*messages, {"role": "assistant", "content": ANSWER_SENTINEL}]
    closing = render(template, answered, generation=False, **tokens)
    end = closing.split(ANSWER_SENTINEL, 1)[1].strip() if ANSWER_SENTINEL in closing else ""
    return prefix, suffix, end or eos_token
