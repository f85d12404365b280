"""One field helper and one builder for every config (flags > environment > defaults)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import MISSING, field
from typing import Any, TypeVar

C = TypeVar("C")
Parse = Callable[[str], Any]


class SettingError(ValueError):
    """A flag or environment value that does not parse; the message names where it came from."""


def setting(
    default: Any = None,
    help: str = "",
    *,
    env: str | None = None,
    parse: Parse | type | None = None,
    flag: str | None = None,
    secret: bool = False,
    choices: tuple[str, ...] | None = None,
    switch: bool = False,
    repeat: bool = False,
    metavar: str | None = None,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A config field. ``env``: its environment variable; ``parse``: text -> value (an Enum
    class gives the flag its choices); ``flag``: the flag when not ``--field-name``;
    ``secret``: environment only (a flag would show in ``ps``) and left out of ``repr``;
    ``switch``: a bool flag without a value that sets the opposite of the default (e.g.
    ``--no-plots``); ``repeat``: the flag may be given several times (a tuple of values)."""
    metadata = {
        "help": help, "env": env, "parse": parse, "flag": flag, "secret": secret,
        "choices": choices, "switch": switch, "repeat": repeat, "metavar": metavar,
    }  # fmt: skip
    if default_factory is not None:
        return field(default_factory=default_factory, repr=not secret, metadata=metadata)
    return field(default=default, repr=not secret, metadata=metadata)


def field_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be a positive whole number, got {value}")
    return value


def parser_of(f: dataclasses.Field[Any]) -> Parse:
    """How a field's text is read: its ``parse``, else its default's type (bool: yes/no; a
    repeated flag: each value as text)."""
    parse = f.metadata.get("parse")
    if parse is None and f.metadata.get("repeat"):
        parse = str  # each value given; the default's type is the container
    if parse is None:
        default = field_default(f)
        parse = type(default) if default is not None else str
    return parse_bool if parse is bool else parse  # type: ignore[no-any-return]


def flag_of(f: dataclasses.Field[Any], prefix: str = "") -> tuple[str, str]:
    """A field's flag and argparse ``dest``."""
    flag = f.metadata.get("flag")
    if flag and not prefix:
        return flag, flag.lstrip("-").replace("-", "_")
    name = prefix + f.name
    return "--" + name.replace("_", "-"), name


def build_config(
    cls: type[C],
    *,
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    prefix: str = "",
    error: type[Exception] = SettingError,
    **given: Any,
) -> C:
    """Flag > environment variable > default for each field, parsed, then validated by ``cls``.

    ``flags``: argparse's ``vars(args)`` (None: not given); ``given``: values set by the caller
    (e.g. nested configs), which win."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if "help" not in f.metadata or f.name in given:
            continue
        flag, dest = flag_of(f, prefix)
        raw, origin = flags.get(dest), flag
        name = f.metadata.get("env")
        if raw is None and name and env.get(name, "") != "":
            raw, origin = env[name], name
        if raw is None:
            continue
        try:
            values[f.name] = _parsed(parser_of(f), raw)
        except ValueError as exc:
            raise error(f"{origin}: invalid value {raw!r} ({exc})") from exc
    return cls(**values, **given)


def _parsed(parse: Parse, raw: Any) -> Any:
    if isinstance(raw, str):
        return parse(raw)
    if isinstance(raw, list):  # a repeated flag
        return tuple(parse(item) if isinstance(item, str) else item for item in raw)
    return raw
