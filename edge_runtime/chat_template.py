"""Render a model's own chat template (``tokenizer.chat_template``) into the FogGen prompt.

Templates come inside downloaded files, so they are untrusted code: they run in jinja2's
``ImmutableSandboxedEnvironment`` (no attribute access to internals, no mutation of the values
passed in, ranges capped), as transformers does, with the same options and helpers
(``raise_exception``, ``strftime_now``, a ``tojson`` that keeps non-ASCII text). Stricter than
jinja2's default: reaching for an internal (``''.__class__``) is an error at once rather than a
silent empty value, and ``*`` / ``**`` cannot build a string or number too large to render.
A rendering is bounded in time too (:data:`MAX_RENDER_SECONDS`), by the sandbox itself rather
than a signal alarm, so the bound holds on any thread, not only the main one:
every call (macros, ``loop(...)`` of a recursive loop, methods), attribute and item lookup,
``*`` / ``**`` and every iteration of every ``{% for %}`` checks the deadline, so nested loops
and recursion without end are stopped; the template then fails with a
:class:`ChatTemplateTimeoutError`. One call into a builtin (a filter, a string method) is
not interrupted: its cost is bounded only by the sizes it is given. Whatever else a template
raises becomes a :class:`ChatTemplateError`.

The conversation is rendered once, with a sentinel as the user message, and split there: the
text before is the shared prefix (system prompt included), the text after is the turn change
to the assistant. The question itself is never passed through the template, so a template can
neither see nor rewrite user text, and the runtime tokenizes that text with control tokens off.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from edge_runtime.errors import ChatTemplateError, ChatTemplateTimeoutError

MAX_TEMPLATE_CHARS = 100_000  # the largest templates in common use are ~10k characters
MAX_RENDERED_CHARS = 50_000  # the FogGen conversation renders to well under 2k characters
MAX_EXPONENT = 1_000  # ``**`` beyond this (10**10**9) would compute for minutes
MAX_RENDER_SECONDS = 1.0  # real templates render in about a millisecond: past this, it spins
LOOP_FILTER = "foggen_checked_loop"  # wraps the iterable of every ``{% for %}`` (see _compile)
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


class _Deadline:
    """When a rendering must be over; :meth:`check` raises once it is past."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise ChatTemplateTimeoutError(self.seconds)


class _CheckedIterable:
    """A ``{% for %}``'s iterable that checks the deadline at every item; sized when its
    source is (``loop.length`` reads the size rather than the items)."""

    def __init__(self, source: Any, check: Callable[[], None]) -> None:
        self._source = source
        self._check = check

    def __iter__(self) -> Iterator[Any]:
        for item in self._source:
            self._check()
            yield item

    def __len__(self) -> int:
        return len(self._source)


def _environment(deadline: _Deadline):  # noqa: ANN202 - a jinja2 environment, imported lazily
    from jinja2.exceptions import SecurityError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
            deadline.check()
            return super().call(context, obj, *args, **kwargs)

        def getattr(self, obj: Any, attribute: str) -> Any:
            deadline.check()
            return super().getattr(obj, attribute)

        def getitem(self, obj: Any, argument: Any) -> Any:
            deadline.check()
            return super().getitem(obj, argument)

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            deadline.check()
            return _bounded_binop(operator, left, right)

        def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
            kind = type(obj).__name__
            raise SecurityError(f"access to attribute {attribute!r} of a {kind} is unsafe")

    env = Sandbox(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters[LOOP_FILTER] = lambda iterable: _CheckedIterable(iterable, deadline.check)
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def _compile(template: str, deadline: _Deadline):  # noqa: ANN202 - a jinja2 Template
    """The template, compiled with every ``{% for %}`` iterating through :data:`LOOP_FILTER`
    (no sandbox hook runs per iteration of a plain loop: ``{% for a in s %}{% for b in s %}``
    calls nothing)."""
    from jinja2 import nodes

    env = _environment(deadline)
    tree = env.parse(template)
    for loop in list(tree.find_all(nodes.For)):
        loop.iter = nodes.Filter(loop.iter, LOOP_FILTER, [], [], None, None, lineno=loop.lineno)
    return env.from_string(tree)


def render(
    template: str,
    messages: list[dict[str, str]],
    *,
    generation: bool,
    bos_token: str,
    eos_token: str,
    seconds: float = MAX_RENDER_SECONDS,
) -> str:
    """The template's text for ``messages``, compiled and rendered within ``seconds``."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise ChatTemplateError(f"it has {len(template)} characters (limit {MAX_TEMPLATE_CHARS})")
    deadline = _Deadline(seconds)
    try:
        compiled = _compile(template, deadline)
        text = compiled.render(
            messages=messages,
            add_generation_prompt=generation,
            bos_token=bos_token,
            eos_token=eos_token,
        )
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
    user = {"role": "user", "content": USER_SENTINEL}
    merged = {"role": "user", "content": f"{system}\n\n{USER_SENTINEL}"}
    misplaced = ChatTemplateError(
        "it does not place the system prompt and the user message verbatim, in order"
    )
    error = misplaced
    for messages in ([{"role": "system", "content": system}, user], [merged]):
        try:
            text = render(
                template, messages, generation=True, bos_token=bos_token, eos_token=eos_token
            )
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
    closing = render(template, answered, generation=False, bos_token=bos_token, eos_token=eos_token)
    end = closing.split(ANSWER_SENTINEL, 1)[1].strip() if ANSWER_SENTINEL in closing else ""
    return prefix, suffix, end or eos_token
