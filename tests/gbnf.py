"""A tiny GBNF expander for tests: enumerates the language of a finite grammar made of quoted
literals, alternatives and rule references (what schema.gbnf uses). Independent of the code
under test, so the grammar and the parser can be checked against each other."""

from __future__ import annotations

import itertools
import re

_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|([a-z][a-z0-9-]*)|(\|)')


def _unescape(text: str) -> str:
    return text.encode().decode("unicode_escape")


def language(grammar: str, start: str = "root") -> set[str]:
    rules: dict[str, list[list[tuple[str, str]]]] = {}
    for line in grammar.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, body = line.partition("::=")
        alternatives: list[list[tuple[str, str]]] = [[]]
        for literal, ref, bar in _TOKEN.findall(body):
            if bar:
                alternatives.append([])
            elif ref:
                alternatives[-1].append(("ref", ref))
            else:
                alternatives[-1].append(("lit", _unescape(literal)))
        rules[name.strip()] = alternatives

    def expand(rule: str) -> set[str]:
        out: set[str] = set()
        for sequence in rules[rule]:
            parts = [{value} if kind == "lit" else expand(value) for kind, value in sequence]
            out.update("".join(p) for p in itertools.product(*parts))
        return out

    return expand(start)
