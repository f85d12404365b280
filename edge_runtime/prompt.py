"""The FogGen prompt for any chat model: the model's own chat template, or Gemma's turns.

A GGUF with a ``tokenizer.chat_template`` gets the prompt its template renders (sandboxed, see
:mod:`edge_runtime.chat_template`). A file without one (the embedded base Gemma-3, our chain)
gets Gemma's turn format built by hand: Gemma has no system role, so the system prompt is
prepended to the first user turn, as Gemma's own template does.

Either way the prompt is split in three: the prefix (identical for every question, evaluated
once and reused), the question (plain text: control tokens off), and the turn change to the
model. The BOS token, when the model wants one, is added once, as a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge_runtime.chat_template import split_conversation
from edge_runtime.errors import ChatTemplateError
from edge_runtime.question import Question

if TYPE_CHECKING:
    from edge_runtime.engine import LlamaEngine

SYSTEM_PROMPT = (
    "You are a self-aware multiple-choice assistant.\n"
    "\n"
    "Rules:\n"
    "- First, assess your confidence in solving this question.\n"
    "- Then give your answer.\n"
    "- Output format:\n"
    "  Confidence: <0.0|0.25|0.5|0.75|1.0>\n"
    "  Final answer: <OPTION_LETTER>"
)

START_USER = "<start_of_turn>user\n"
END_TURN = "<end_of_turn>\n"
START_MODEL = "<start_of_turn>model\n"
END_OF_TURN_TOKEN = "<end_of_turn>"


def user_message(question: Question) -> str:
    """The MCQ: the question, then one option per line."""
    options = "\n".join(
        f"{letter}. {text}" for letter, text in zip(question.letters, question.choices, strict=True)
    )
    return f"{question.text}\n{options}"


@dataclass(frozen=True)
class ChatFormat:
    """How one model's prompts read: ``prefix`` + the question + ``suffix``, then the answer
    and ``end_of_turn`` (the training target's last token)."""

    prefix: str  # after BOS: the system prompt and the start of the user's turn
    suffix: str  # after the question: the turn change, ending where the model answers
    end_of_turn: str
    add_bos: bool
    origin: str  # "gemma-turns" or "chat-template"

    def render(self, question: Question) -> str:
        """The whole prompt text after BOS (for HF tokenizers, training and parity checks)."""
        return self.prefix + user_message(question) + self.suffix


GEMMA_TURNS = ChatFormat(
    prefix=f"{START_USER}{SYSTEM_PROMPT}\n\n",
    suffix=END_TURN + START_MODEL,
    end_of_turn=END_OF_TURN_TOKEN,
    add_bos=True,
    origin="gemma-turns",
)


def chat_format(
    template: str | None, *, architecture: str, bos_token: str, eos_token: str, add_bos: bool
) -> ChatFormat:
    """The format for a model: its own template, else Gemma's turns (Gemma files only)."""
    if not template:
        if architecture.startswith("gemma"):
            return GEMMA_TURNS
        raise ChatTemplateError(
            f"the '{architecture}' file has no tokenizer.chat_template, and only Gemma's turn "
            "format is known without one"
        )
    prefix, suffix, end = split_conversation(
        template, SYSTEM_PROMPT, bos_token=bos_token, eos_token=eos_token
    )
    if add_bos and bos_token and prefix.startswith(bos_token):  # BOS once, as the engine adds it
        prefix = prefix[len(bos_token) :]
    return ChatFormat(prefix, suffix, end, add_bos, origin="chat-template")


def chat_format_for_engine(engine: LlamaEngine) -> ChatFormat:
    """The format of the model an engine has loaded, from the facts its file gives: its chat
    template, architecture, BOS/EOS tokens and whether it wants BOS."""
    return chat_format(
        engine.chat_template(),
        architecture=engine.metadata("general.architecture") or "",
        bos_token=engine.token_text(engine.bos),
        eos_token=engine.token_text(engine.eos),
        add_bos=engine.add_bos,
    )


def render_prompt(question: Question, *, chat: ChatFormat) -> str:
    """The whole prompt text after BOS, in the model's ``chat`` format."""
    return chat.render(question)


class PromptTokens:
    """The exact token ids llama.cpp evaluates for a question: BOS (if the model wants one),
    the shared prefix, the MCQ, then the format's own turn markers.

    The question and options are tokenized as plain text: a ``<start_of_turn>`` or
    ``<|im_end|>`` typed by a user stays text and cannot open a turn of its own (no prompt
    injection through control tokens).
    """

    def __init__(self, engine: LlamaEngine) -> None:
        self._engine = engine
        self.chat = chat_format_for_engine(engine)
        bos = [engine.bos] if self.chat.add_bos else []
        self.prefix = [*bos, *engine.tokenize(self.chat.prefix)]
        self._turn_end = engine.tokenize(self.chat.suffix)

    def __call__(self, question: Question) -> list[int]:
        user = self._engine.tokenize(user_message(question), special=False)
        return self.prefix + user + self._turn_end

    def question_end(self, prompt: list[int]) -> int:
        """The index of the user message's last token in a prompt built by this object."""
        return len(prompt) - len(self._turn_end) - 1
