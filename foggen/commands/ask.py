"""``foggen ask``: one question from the arguments, or JSON Lines from stdin / --input."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from typing import IO, Any

from edge_runtime.config import RuntimeConfig
from foggen.commands.common import add_cloud_flags, escalator, runtime_config
from foggen.exits import EXIT_OK, EXIT_SOME_FAILED
from foggen.flags import add_flags

log = logging.getLogger("foggen")


def register(commands: Any) -> None:
    ask = commands.add_parser(
        "ask",
        help="answer questions (one from the arguments, or JSON Lines from stdin / --input)",
        description="Answer one question given as arguments, or JSON Lines "
        '({"question": ..., "choices": [...], "id"?, "domain"?}) from --input or stdin.',
    )
    ask.add_argument("question", nargs="?", help="the question text (omit to read JSON Lines)")
    ask.add_argument(
        "-c", "--choice", action="append", dest="choices", metavar="TEXT", help="an option (repeat)"
    )
    ask.add_argument("--id", help="id for the record (one question only)")
    ask.add_argument("--domain", help="domain for the record (one question only)")
    ask.add_argument("--input", metavar="FILE", help="read JSON Lines from FILE instead of stdin")
    ask.add_argument("--json", action="store_true", help="print decision records as JSON Lines")
    add_flags(ask, RuntimeConfig)
    add_cloud_flags(ask)
    ask.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edge_runtime.errors import ConfigError
    from edge_runtime.question import make_question
    from edge_runtime.runtime import EdgeRuntime

    config = runtime_config(args)
    single = args.question is not None
    if single:
        question = make_question(args.question, args.choices or [], id=args.id, domain=args.domain)
    elif args.choices or args.id or args.domain:
        raise ConfigError("-c/--id/--domain go with a question argument, not with JSON Lines")
    with escalator(args) as cloud, EdgeRuntime.load(config, escalator=cloud) as runtime:
        if single:
            _emit(runtime.answer(question).to_dict(), json_output=args.json)
            return EXIT_OK
        return _answer_lines(runtime, args)


def _answer_lines(runtime: Any, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from edge_runtime.errors import EdgeRuntimeError
    from edge_runtime.question import question_from_json
    from edge_runtime.record import error_record

    failed = 0
    with _open_input(args.input) as stream:
        for number, raw in tqdm(_numbered(stream), desc="questions", unit="q", file=sys.stderr):
            record_id = _peek_id(raw)
            try:
                if not raw.strip():
                    raise ValueError("empty line")
                record = runtime.answer(question_from_json(raw)).to_dict()
            except (EdgeRuntimeError, ValueError) as exc:
                failed += 1
                kind = getattr(exc, "kind", "invalid_question")
                record = error_record(line=number, id=record_id, kind=kind, message=str(exc))
                log.warning("line %d: %s", number, exc)
            _emit(record, json_output=args.json)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _open_input(path: str | None) -> contextlib.AbstractContextManager[IO[bytes]]:
    return open(path, "rb") if path else contextlib.nullcontext(sys.stdin.buffer)


def _numbered(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(stream, start=1):
        yield number, raw.rstrip(b"\r\n")


def _peek_id(raw: bytes) -> str | None:
    try:
        value = json.loads(raw).get("id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _emit(record: dict[str, Any], *, json_output: bool) -> None:
    if json_output:
        print(json.dumps(record, ensure_ascii=False), flush=True)
    else:
        print(_human(record), flush=True)


def _human(record: dict[str, Any]) -> str:
    if "error" in record:
        return f"line {record['line']}: {record['error_kind']}: {record['error']}"
    where = {
        "edge": "answered on the device",
        "cloud": "answered by the cloud",
        "edge_fallback": f"escalation {record['escalation']}, answered on the device",
    }[record["answer_source"]]
    how = f"consensus of {record['orders']} orders, " if record.get("orders", 1) > 1 else ""
    return (
        f"{record['id']}: answer {record['answer'] or '-'} "
        f"({how}confidence {record['confidence']}, tau {record['tau']} -> route {record['route']}; "
        f"{where}; {record['latency_ms']['total']:.0f} ms)"
    )
