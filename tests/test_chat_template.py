"""The model's own chat template, rendered sandboxed: untrusted code that cannot reach out,
cannot touch what it is given, and cannot rewrite the user's text (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_runtime.chat_template import render, split_conversation
from edge_runtime.errors import ChatTemplateError
from edge_runtime.prompt import GEMMA_TURNS, SYSTEM_PROMPT, ChatFormat, chat_format
from tests.templates import CHATML_TEMPLATE, GEMMA_TEMPLATE

TOKENS = {"bos_token": "<s>", "eos_token": "</s>"}


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
