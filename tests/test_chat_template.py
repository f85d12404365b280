"""The model's own chat template, rendered sandboxed: untrusted code that cannot reach out,
cannot touch what it is given, and cannot rewrite the user's text (no model needed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypedDict

import pytest

from edge_runtime.chat_template import MAX_RENDER_SECONDS, render, split_conversation
from edge_runtime.errors import ChatTemplateError, ChatTemplateTimeoutError
from edge_runtime.prompt import GEMMA_TURNS, SYSTEM_PROMPT, ChatFormat, chat_format
from tests.templates import CHATML_TEMPLATE, GEMMA_TEMPLATE


class Tokens(TypedDict):
    bos_token: str
    eos_token: str


TOKENS: Tokens = {"bos_token": "<s>", "eos_token": "</s>"}


def _chatml(template: str = CHATML_TEMPLATE, *, add_bos: bool = False) -> ChatFormat:
    return chat_format(template, architecture="llama", add_bos=add_bos, **TOKENS)


def escapes(marker: Path) -> list[str]:
    """Templates that reach for Python's internals; each would create ``marker`` if it ran."""
    touch = f"popen('touch {marker}').read()"
    return [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ ''.__class__ }}",  # jinja2 alone renders this as '' and carries on
        f"{{{{ cycler.__init__.__globals__.os.{touch} }}}}",
        f"{{{{ lipsum.__globals__['os'].{touch} }}}}",
        f"{{{{ (joiner|attr('__init__')|attr('__globals__'))['os'].{touch} }}}}",
        f"{{{{ namespace.__init__.__globals__.os.{touch} }}}}",
        "{{ messages.append({'role': 'system', 'content': 'obey'}) }}",
        "{% set _ = messages[0].update({'content': 'rewritten'}) %}{{ messages[0].content }}",
        "{% for i in range(10**9) %}{% endfor %}",  # jinja2's range cap: an OverflowError
        "{{ 'x' * 10**9 }}",  # a gigabyte string
        "{{ 10 ** 100000000 }}",  # minutes of arithmetic
    ]


@pytest.mark.parametrize("n", range(len(escapes(Path("x")))))
def test_a_template_reaching_for_internals_is_refused_and_never_runs(
    tmp_path: Path, n: int
) -> None:
    marker = tmp_path / "escaped"
    template = escapes(marker)[n]
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}]
    with pytest.raises(ChatTemplateError, match="rendering failed"):
        render(template, messages, generation=True, **TOKENS)
    with pytest.raises(ChatTemplateError):
        _chatml(template)
    assert not marker.exists()
    assert messages == [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}]


def test_chatml_splits_at_the_user_message() -> None:
    chat = _chatml()
    assert chat.prefix == f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n"
    assert chat.suffix == "<|im_end|>\n<|im_start|>assistant\n"
    assert (chat.end_of_turn, chat.add_bos, chat.origin) == ("<|im_end|>", False, "chat-template")


def test_a_template_refusing_the_system_role_gets_it_in_the_user_message() -> None:
    """Google's Gemma template raises on a system message: the system prompt then opens the user
    turn, which is exactly the hand-written Gemma format (BOS left to the tokenizer, once)."""
    with pytest.raises(ChatTemplateError, match="System role not supported"):
        render(GEMMA_TEMPLATE, [{"role": "system", "content": "s"}], generation=True, **TOKENS)
    chat = chat_format(
        GEMMA_TEMPLATE, architecture="gemma3", bos_token="<bos>", eos_token="<eos>", add_bos=True
    )
    assert (chat.prefix, chat.suffix, chat.end_of_turn) == (
        GEMMA_TURNS.prefix,
        GEMMA_TURNS.suffix,
        GEMMA_TURNS.end_of_turn,
    )
    unstripped = chat_format(
        GEMMA_TEMPLATE, architecture="gemma3", bos_token="<bos>", eos_token="<eos>", add_bos=False
    )
    assert unstripped.prefix == "<bos>" + GEMMA_TURNS.prefix  # no BOS added: the text keeps it


def test_a_template_leaving_out_the_system_message_gets_it_in_the_user_message() -> None:
    users_only = CHATML_TEMPLATE.replace(
        "{% for message in messages %}",
        "{% for message in messages if message['role'] != 'system' %}",
    )
    prefix, suffix, _ = split_conversation(users_only, SYSTEM_PROMPT, **TOKENS)
    assert prefix == f"<|im_start|>user\n{SYSTEM_PROMPT}\n\n"
    assert suffix == "<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize(
    "change",
    [
        ("message['content']", "message['content'] | upper"),  # rewrites the text
        ("message['content']", "message['content'][:5]"),  # truncates it
        ("message['content']", "message['content'] + message['content']"),  # repeats it
        ("message['content']", "'(redacted)'"),  # drops it
    ],
)
def test_a_template_that_drops_or_rewrites_the_user_text_is_refused(
    change: tuple[str, str],
) -> None:
    with pytest.raises(ChatTemplateError, match="verbatim, in order"):
        _chatml(CHATML_TEMPLATE.replace(*change))


def test_without_a_template_only_gemma_has_a_known_format() -> None:
    assert chat_format(None, architecture="gemma3", add_bos=True, **TOKENS) is GEMMA_TURNS
    for architecture in ("llama", "qwen2"):
        with pytest.raises(ChatTemplateError, match=f"'{architecture}' file has no tokenizer"):
            chat_format("", architecture=architecture, add_bos=False, **TOKENS)


def test_a_huge_template_or_rendering_is_refused() -> None:
    with pytest.raises(ChatTemplateError, match="characters"):
        _chatml("x" * 200_000)
    with pytest.raises(ChatTemplateError, match="rendered"):
        _chatml("{% for i in range(20000) %}{{ messages[0]['content'] }}{% endfor %}")


SPINS = {
    "nested loops": "{% for a in range(10**5) %}{% for b in range(10**5) %}{% endfor %}"
    "{% endfor %}",
    # no call, lookup or range at all inside: only the loops' own iteration can be checked
    "nested loops over a string": "{% set s = 'x' * 40000 %}"
    "{% for a in s %}{% for b in s %}{% for c in s %}{% endfor %}{% endfor %}{% endfor %}",
    "a recursive macro": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
    "{% endmacro %}{{ f(60) }}",
    "a while-like recursive loop": "{% for x in range(10) recursive %}"
    "{% if loop.depth < 30 %}{{ loop(range(10)) }}{% endif %}{% endfor %}",
}


def _on_a_worker_thread(call: Callable[[], object]) -> tuple[BaseException | None, float]:
    """What ``call`` raised on a non-main thread (no signal alarm can work there), and when."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(call)
        try:
            future.result(timeout=60)
        except Exception as exc:  # the outcome under test
            return exc, time.monotonic() - started
    return None, time.monotonic() - started


@pytest.mark.parametrize("name", sorted(SPINS))
def test_a_spinning_template_is_stopped_on_a_worker_thread(name: str) -> None:
    messages = [{"role": "user", "content": "q"}]
    raised, seconds = _on_a_worker_thread(
        lambda: render(SPINS[name], messages, generation=True, seconds=0.3, **TOKENS)
    )
    assert isinstance(raised, ChatTemplateTimeoutError), raised
    assert raised.seconds == 0.3 and "time bound of 0.3 s" in str(raised)
    assert seconds < 10  # the bound, plus a busy machine's slack; unbounded it runs for ages


def test_the_default_time_bound_applies_to_the_model_format() -> None:
    raised, seconds = _on_a_worker_thread(lambda: _chatml(SPINS["nested loops"]))
    assert isinstance(raised, ChatTemplateTimeoutError), raised
    assert raised.seconds == MAX_RENDER_SECONDS
    assert seconds < 2 * MAX_RENDER_SECONDS + 10  # two renderings (system role, then merged)


# loop variables, filtered / empty / recursive loops, dict items, namespaces and macros: what
# the deadline checks wrap must not change a byte of what a template renders
LOOPS_TEMPLATE = (
    "{% set ns = namespace(n=0) %}{% macro turn(m) %}<{{ m.role }}>{{ m.content }}{% endmacro %}"
    "{% for m in messages if m.role != 'tool' %}{{ loop.index }}/{{ loop.length }}"
    "{{ loop.revindex0 }}{{ loop.cycle('a', 'b') }}{% if loop.changed(m.role) %}*{% endif %}"
    "{{ turn(m) }}{% if loop.last %}.{% endif %}{% set ns.n = ns.n + 1 %}{% endfor %}"
    "{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}={{ v }}{% endfor %}"
    "{% for t in messages if t.role == 'none' %}{{ t }}{% else %}none{% endfor %}"
    "{% for x in [[1, [2]], 3] recursive %}{% if x is iterable %}({{ loop(x) }})"
    "{% else %}{{ x }}@{{ loop.depth }}{% endif %}{% endfor %}"
    "{% for c in 'abc' %}{% if c == 'b' %}{% break %}{% endif %}{{ c }}{% endfor %}{{ ns.n }}"
)


def test_a_real_template_and_loop_features_render_as_plain_jinja2_does() -> None:
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    plain = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "q"},
        {"role": "tool", "content": "t"},
        {"role": "assistant", "content": "a"},
    ]
    for template in (LOOPS_TEMPLATE, CHATML_TEMPLATE):
        expected = plain.from_string(template).render(
            messages=messages, add_generation_prompt=True, **TOKENS
        )
        ours = render(template, messages, generation=True, **TOKENS)
        assert ours == expected
    assert ours.startswith("<|im_start|>system\nsys<|im_end|>\n")
