"""The one config -> flags builder: every config's flags come from its fields' metadata."""

from __future__ import annotations

import argparse
import dataclasses
import os
from enum import Enum
from typing import Any

from confkit.settings import build_config, field_default, flag_of, parser_of


def add_flags(
    parser: Any,
    cls: type,
    *,
    only: tuple[str, ...] | None = None,
    skip: tuple[str, ...] = (),
    prefix: str = "",
) -> None:
    """One flag per field of ``cls`` that has help and is not secret; every flag defaults to
    None, so "not given" stays visible and :func:`config_from` can fall back to the
    environment and then the field's default."""
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "help" not in meta or meta.get("secret") or f.name in skip:
            continue
        if only is not None and f.name not in only:
            continue
        flag, dest = flag_of(f, prefix)
        if meta.get("switch"):
            parser.add_argument(flag, dest=dest, action="store_const", default=None,
                                const=not field_default(f), help=meta["help"])  # fmt: skip
            continue
        parser.add_argument(
            flag,
            dest=dest,
            default=None,
            action="append" if meta.get("repeat") else "store",
            choices=_choices(f),
            metavar=_metavar(f),
            help=_help(f),
        )


def config_from(cls: type, args: argparse.Namespace, *, prefix: str = "", **given: Any) -> Any:
    """Flag > environment variable > default, parsed and validated by the config itself."""
    return build_config(cls, flags=vars(args), env=os.environ, prefix=prefix, **given)


def _choices(f: dataclasses.Field[Any]) -> list[str] | None:
    parse = f.metadata.get("parse")
    if isinstance(parse, type) and issubclass(parse, Enum):
        return [member.value for member in parse]
    choices = f.metadata.get("choices")
    return list(choices) if choices else None


METAVARS = {"parse_bool": "BOOL", "int": "N", "positive_int": "N", "float": "X", "Path": "PATH"}


def _metavar(f: dataclasses.Field[Any]) -> str | None:
    if _choices(f):
        return None
    given: str | None = f.metadata.get("metavar")
    return given or METAVARS.get(parser_of(f).__name__, f.name.upper())


def _help(f: dataclasses.Field[Any]) -> str:
    text: str = f.metadata["help"]
    default = field_default(f)
    if isinstance(default, Enum):
        default = default.value
    elif isinstance(default, tuple):
        default = ",".join(str(d) for d in default) or "none"
    env = f.metadata.get("env")
    if "default" in text:
        return f"{text} (env {env})" if env else text
    return f"{text} (env {env}; default: {default})" if env else f"{text} (default: {default})"
