"""The privacy gate: what may leave the device, and in which form.

Two steps, both before anything is sent or queued:

1. Never-escalate rules: a question whose domain is listed, or whose text or options match
   the configured regular expression, stays on the device (``escalation: blocked_privacy``).
2. Redaction of personal data in what does leave: e-mail addresses, phone numbers written as
   phone numbers (a leading ``+``, ``(555) 123-4567`` or ``555-123-4567``), and card numbers
   (13-19 digits, optionally grouped by spaces or hyphens, that pass the Luhn check).

Bare numbers are left alone on purpose: "152 roses", "$1,000,000" or "2024" in a math or
finance question are not personal data, and a phone number without any phone formatting cannot
be told from them. The bundled questions pass through unchanged (``tests/test_privacy.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cloud_client.config import CloudConfig

EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}\b"
)
CARD = re.compile(r"(?<![\d.,-])\d(?:[ -]?\d){12,18}(?![\d-]|[.,]\d)")
PHONE = re.compile(
    r"(?<![\w+])"
    r"(?:\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}"  # +7 701 234 56 78, +44 (20) 7946-0958
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}"  # (555) 123-4567
    r"|\d{3}[.-]\d{3}[.-]\d{4})"  # 555-123-4567, 555.123.4567
    r"(?![\w-]|[.,]\d)"
)
PHONE_DIGITS = (7, 15)  # E.164 allows at most 15 digits

REDACTIONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", EMAIL),
    ("card", CARD),
    ("phone", PHONE),
)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits (card numbers pass it)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _is_personal(kind: str, text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    if kind == "card":
        return 13 <= len(digits) <= 19 and luhn_valid(digits)
    if kind == "phone":
        return PHONE_DIGITS[0] <= len(digits) <= PHONE_DIGITS[1]
    return True


def redact(text: str) -> tuple[str, tuple[str, ...]]:
    """``text`` with personal data replaced by ``[email]``, ``[card]``, ``[phone]``; and which
    kinds were replaced (one entry per replacement)."""
    found: list[str] = []
    for kind, pattern in REDACTIONS:

        def replace(match: re.Match[str], kind: str = kind) -> str:
            if not _is_personal(kind, match[0]):
                return match[0]
            found.append(kind)
            return f"[{kind}]"

        text = pattern.sub(replace, text)
    return text, tuple(found)


@dataclass(frozen=True)
class Outgoing:
    """What may be sent: the redacted question, or the rule that keeps it on the device."""

    question: str
    choices: tuple[str, ...]
    blocked_by: str | None = None
    redacted: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrivacyPolicy:
    never_domains: frozenset[str] = frozenset()
    never_regex: str | None = None
    redact: bool = True

    @classmethod
    def from_config(cls, config: CloudConfig) -> PrivacyPolicy:
        return cls(frozenset(config.never_domains), config.never_regex, config.redact)

    def check(self, question: str, choices: Sequence[str], *, domain: str | None) -> Outgoing:
        """Apply the never-escalate rules to the original text, then redact what may leave."""
        if domain is not None and domain in self.never_domains:
            return Outgoing(question, tuple(choices), blocked_by=f"domain:{domain}")
        if self.never_regex is not None:
            pattern = re.compile(self.never_regex)
            if any(pattern.search(text) for text in (question, *choices)):
                return Outgoing(question, tuple(choices), blocked_by="regex")
        if not self.redact:
            return Outgoing(question, tuple(choices))
        new_question, kinds = redact(question)
        new_choices = []
        for choice in choices:
            new_choice, more = redact(choice)
            new_choices.append(new_choice)
            kinds += more
        return Outgoing(new_question, tuple(new_choices), redacted=kinds)
