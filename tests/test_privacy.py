"""The privacy gate: never-escalate rules, and redaction that leaves questions' numbers alone."""

from __future__ import annotations

import pytest

from cloud_client.config import CloudConfig
from cloud_client.privacy import PrivacyPolicy, luhn_valid, redact
from edge_runtime.mcq import DOMAINS, SPLITS, load_questions


@pytest.mark.parametrize(
    "text, redacted, kinds",
    [
        ("write to john.doe+kiosk@example.co.uk today", "write to [email] today", ("email",)),
        ("a@b.io, c_d@mail.example.kz", "[email], [email]", ("email", "email")),
        ("call +7 701 234 5678", "call [phone]", ("phone",)),
        ("call +44 (20) 7946-0958.", "call [phone].", ("phone",)),
        ("(555) 123-4567 or 555.123.4567", "[phone] or [phone]", ("phone", "phone")),
        ("card 4111 1111 1111 1111 expires", "card [card] expires", ("card",)),
        ("4111-1111-1111-1111", "[card]", ("card",)),
        ("pay with 5500005555555559", "pay with [card]", ("card",)),
        ("378282246310005 (Amex)", "[card] (Amex)", ("card",)),
    ],
)
def test_personal_data_is_redacted(text: str, redacted: str, kinds: tuple[str, ...]) -> None:
    assert redact(text) == (redacted, kinds)


@pytest.mark.parametrize(
    "text",
    [
        "He had 152 roses and sold 96.",
        "A bond pays $1,000,000 over 30 years at 4.25%.",
        "pi is 3.14159265358979",  # digits after a decimal point are not a card
        "4111 1111 1111 1112",  # fails the Luhn check
        "1234567890123",
        "The year 2024-2025 budget",
        "x = 2023-10-15",
        "+1",
        "2 +3 4 5",  # too few digits for a phone number
        "Compute 7 + 12 - 3.",
        "user@localhost",  # no top-level domain
        "ISBN 978-3-16-148410-0",
    ],
)
def test_numbers_that_are_not_personal_data_stay(text: str) -> None:
    assert redact(text) == (text, ())


@pytest.mark.parametrize(
    "digits, valid",
    [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True),
     ("0", True), ("18", True), ("19", False)],
)  # fmt: skip
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


# Redaction changes none of the bundled questions (6,166 in seven domains, both splits).
# If a future data update adds one, list its id here with the reason.
CHANGED_BY_REDACTION: dict[str, str] = {}


def test_redaction_changes_no_bundled_question() -> None:
    changed, total = {}, 0
    for domain in DOMAINS:
        for split in SPLITS:
            for q in load_questions(domain, split):
                total += 1
                kinds = [k for text in (q.text, *q.choices) for k in redact(text)[1]]
                if kinds:
                    changed[q.id] = ", ".join(kinds)
    assert total > 6000
    assert set(changed) == set(CHANGED_BY_REDACTION), changed


def test_domain_and_regex_rules_block_before_redaction() -> None:
    policy = PrivacyPolicy(frozenset({"medical"}), r"@example\.org")
    assert policy.check("Q?", ["a", "b"], domain="medical").blocked_by == "domain:medical"
    # the rule sees the original text: redaction would have removed the address
    blocked = policy.check("Q?", ["x@example.org", "b"], domain="law")
    assert blocked.blocked_by == "regex" and blocked.choices == ("x@example.org", "b")
    allowed = policy.check("Mail y@example.com?", ["a", "b"], domain=None)
    assert allowed.blocked_by is None and allowed.question == "Mail [email]?"
    assert allowed.redacted == ("email",)


def test_policy_from_config_and_redaction_off() -> None:
    config = CloudConfig(never_domains=("law",), never_regex="secret", redact=False)
    policy = PrivacyPolicy.from_config(config)
    assert policy.check("Q?", ["a", "b"], domain="law").blocked_by == "domain:law"
    assert policy.check("a secret?", ["a", "b"], domain=None).blocked_by == "regex"
    kept = policy.check("Mail y@example.com?", ["a", "b"], domain=None)
    assert kept.question == "Mail y@example.com?" and kept.redacted == ()
