"""The FogGen prompt in Gemma's turn format, built by hand.

The embedded GGUF has no chat template, and Gemma has no system role: the system prompt is
prepended to the first user turn, as Gemma's own template does. The prompt is split in two:
the prefix (identical for every question, evaluated once and reused) and the suffix.
The BOS token is added once, as a token, by the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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


def prompt_prefix() -> str:
    """The shared part: user turn start and system prompt (after BOS)."""
    return f"{START_USER}{SYSTEM_PROMPT}\n\n"


def prompt_suffix(question: Question) -> str:
    """The per-question part, ending where the model starts to answer."""
    return f"{user_message(question)}{END_TURN}{START_MODEL}"


def render_prompt(question: Question) -> str:
    """The whole prompt text after BOS (for HF tokenizers, training and parity checks)."""
    return prompt_prefix() + prompt_suffix(question)


class PromptTokens:
    """The exact token ids llama.cpp evaluates for a question: BOS, the shared prefix, the MCQ,
    then the template's own turn markers.

    The question and options are tokenized as plain text: a ``<start_of_turn>`` typed by a user
    stays text and cannot open a turn of its own (no prompt injection through control tokens).
    """

    def __init__(self, engine: LlamaEngine) -> None:
        self._engine = engine
        self.prefix = [engine.bos, *engine.tokenize(prompt_prefix())]
        self._turn_end = engine.tokenize(END_TURN + START_MODEL)

    def __call__(self, question: Question) -> list[int]:
        user = self._engine.tokenize(user_message(question), special=False)
        return self.prefix + user + self._turn_end
