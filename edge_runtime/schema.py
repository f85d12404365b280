"""The FogGen output schema: one object renders the GBNF grammar and parses model output.

Confidence: <0.0|0.25|0.5|0.75|1.0>
Final answer: <OPTION_LETTER>
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources

BUCKETS: tuple[str, ...] = ("0.0", "0.25", "0.5", "0.75", "1.0")
LETTERS: str = string.ascii_uppercase
MIN_OPTIONS, MAX_OPTIONS = 2, len(LETTERS)

CONFIDENCE_PREFIX = "Confidence: "
ANSWER_PREFIX = "\nFinal answer: "

_LENIENT_CONFIDENCE = re.compile(r"^\s*Confidence:\s*([0-9.]+)\s*$")
_LENIENT_ANSWER = re.compile(r"^\s*Final answer:\s*([A-Z])\s*$")


@cache
def _grammar_template() -> string.Template:
    text = resources.files("edge_runtime").joinpath("schema.gbnf").read_text(encoding="utf-8")
    return string.Template(text)


@dataclass(frozen=True)
class ParsedAnswer:
    """What could be read from a model's text. ``strict``: exactly the two schema lines;
    ``lenient``: the first two lines parse (anything may follow)."""

    confidence: float | None
    letter: str | None
    strict: bool
    lenient: bool


@dataclass(frozen=True)
class AnswerSchema:
    """The schema for one question: the five buckets and the letters actually offered."""

    letters: tuple[str, ...]
    buckets: tuple[str, ...] = BUCKETS

    @classmethod
    def for_options(cls, n_options: int) -> AnswerSchema:
        if not MIN_OPTIONS <= n_options <= MAX_OPTIONS:
            raise ValueError(f"a question needs {MIN_OPTIONS}..{MAX_OPTIONS} options")
        return cls(letters=tuple(LETTERS[:n_options]))

    def render(self, bucket: str, letter: str) -> str:
        """The one valid response text for (bucket, letter)."""
        return f"{CONFIDENCE_PREFIX}{bucket}{ANSWER_PREFIX}{letter}"

    def responses(self) -> Iterator[tuple[str, str, str]]:
        """Every response the schema allows, as (bucket, letter, text)."""
        for bucket in self.buckets:
            for letter in self.letters:
                yield bucket, letter, self.render(bucket, letter)

    def grammar(self) -> str:
        """The GBNF grammar accepting exactly :meth:`responses`."""

        def alternatives(values: tuple[str, ...]) -> str:
            return " | ".join(f'"{value}"' for value in values)

        return _grammar_template().substitute(
            BUCKETS=alternatives(self.buckets), LETTERS=alternatives(self.letters)
        )

    def parse(self, text: str) -> ParsedAnswer:
        """Read a model's output; never raises. Unknown buckets or letters do not parse."""
        lines = text.split("\n")
        if len(lines) < 2:
            return ParsedAnswer(None, None, strict=False, lenient=False)
        c_match = _LENIENT_CONFIDENCE.match(lines[0])
        a_match = _LENIENT_ANSWER.match(lines[1])
        if not (c_match and a_match):
            return ParsedAnswer(None, None, strict=False, lenient=False)
        bucket, letter = c_match[1], a_match[1]
        if bucket not in self.buckets or letter not in self.letters:
            return ParsedAnswer(None, None, strict=False, lenient=False)
        strict = text == self.render(bucket, letter)
        return ParsedAnswer(float(bucket), letter, strict=strict, lenient=True)
