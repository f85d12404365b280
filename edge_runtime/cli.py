"""The ``foggen`` command: a thin layer that maps flags to configs and errors to exit codes.

Each subcommand imports its package lazily, so ``foggen ask`` never imports torch or the
converter. Logs and progress bars go to stderr; with ``--json`` stdout carries JSON only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import IO, Any

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_MODEL = 0, 1, 2, 3

log = logging.getLogger("foggen")


def _version() -> str:
    try:
        return metadata.version("foggen-edge")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    from converter.train_cli import add_training_commands
    from edge_runtime.config import RuntimeConfig, add_config_arguments
    from edge_runtime.service.cli import add_serve_command
    from edge_runtime.service.log_cli import add_log_command

    parser = argparse.ArgumentParser(
        prog="foggen",
        description="Answer multiple-choice questions on-device with a self-aware GGUF model; "
        "escalate to the cloud when its confidence is below tau.",
    )
    parser.add_argument("--version", action="version", version=f"foggen-edge {_version()}")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("FOGGEN_LOG_LEVEL", "WARNING"),
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level on stderr (env FOGGEN_LOG_LEVEL; default: WARNING)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    add_config_arguments(ask, RuntimeConfig)
    _add_cloud_arguments(ask)
    ask.set_defaults(handler=_cmd_ask)

    model = commands.add_parser("model", help="inspect or prepare the GGUF model")
    model_commands = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    info = model_commands.add_parser("info", help="path, sha256, architecture, quantization")
    fetch = model_commands.add_parser(
        "fetch", help="assemble (or download) the model into the cache ahead of time"
    )
    for sub in (info, fetch):
        add_config_arguments(sub, RuntimeConfig, only=("model",))
        sub.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=_cmd_model_info)
    fetch.set_defaults(handler=_cmd_model_fetch)
    _add_converter_commands(commands)
    _add_outbox_commands(commands)
    from benchmarks.bench.cli import add_bench_commands

    add_bench_commands(commands)
    add_serve_command(commands)
    add_log_command(commands)
    from benchmarks.calibrator_cli import add_calibrator_commands

    add_calibrator_commands(commands)
    add_training_commands(commands, model_commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    from cloud_client.errors import CloudError
    from edge_runtime.errors import ConfigError, EdgeRuntimeError, InvalidQuestionError

    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except InvalidQuestionError as exc:
        print(f"foggen: invalid question: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CloudError as exc:  # only cloud settings get this far; failed calls fall back
        print(f"foggen: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except EdgeRuntimeError as exc:
        print(f"foggen: error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_MODEL
    except BrokenPipeError:  # e.g. `foggen ask ... | head`
        return EXIT_OK
    except OSError as exc:  # e.g. --input names a file that does not exist
        print(f"foggen: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _runtime_config(args: argparse.Namespace) -> Any:
    from edge_runtime.config import RuntimeConfig, build_config
    from edge_runtime.errors import ConfigError

    if getattr(args, "tau", None) is not None and getattr(args, "tau_file", None) is not None:
        raise ConfigError("give --tau or --tau-file, not both")
    return build_config(RuntimeConfig, flags=vars(args), env=os.environ)


# -- ask --------------------------------------------------------------------------------------
def _cmd_ask(args: argparse.Namespace) -> int:
    from edge_runtime.errors import ConfigError
    from edge_runtime.question import make_question
    from edge_runtime.runtime import EdgeRuntime

    config = _runtime_config(args)
    single = args.question is not None
    if single:
        question = make_question(args.question, args.choices or [], id=args.id, domain=args.domain)
    elif args.choices or args.id or args.domain:
        raise ConfigError("-c/--id/--domain go with a question argument, not with JSON Lines")
    with _escalator(args) as escalator, EdgeRuntime.load(config, escalator=escalator) as runtime:
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
    return (
        f"{record['id']}: answer {record['answer'] or '-'} "
        f"(confidence {record['confidence']}, tau {record['tau']} -> route {record['route']}; "
        f"{where}; {record['latency_ms']['total']:.0f} ms)"
    )


# -- cloud escalation and the outbox ----------------------------------------------------------
CLOUD_FLAGS = ("url", "model", "outbox")


def _add_cloud_arguments(parser: argparse.ArgumentParser) -> None:
    from cloud_client.config import CloudConfig
    from edge_runtime.config import add_config_arguments

    add_config_arguments(parser, CloudConfig, only=CLOUD_FLAGS)


def _cloud_config(args: argparse.Namespace) -> Any:
    from cloud_client.config import CloudConfig
    from edge_runtime.config import build_config

    return build_config(CloudConfig, flags=vars(args), env=os.environ)


def _escalator(args: argparse.Namespace) -> contextlib.AbstractContextManager[Any]:
    """The escalator for `ask` when a cloud URL is set (flag or env), else None."""
    cloud = _cloud_config(args)
    if not cloud.enabled:
        return contextlib.nullcontext(None)
    from edge_runtime.escalation import Escalator

    return Escalator.from_config(cloud)


def _outbox(cloud: Any) -> Any:
    from cloud_client.outbox import Outbox, default_outbox_path

    return Outbox(cloud.outbox or default_outbox_path(), lease_seconds=cloud.lease_seconds)


def _add_outbox_commands(commands: Any) -> None:
    from cloud_client.config import CloudConfig
    from cloud_client.outbox import EntryStatus
    from edge_runtime.config import add_config_arguments

    outbox = commands.add_parser(
        "outbox", help="list or replay escalations that fell back to the device's answer"
    )
    actions = outbox.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="one entry per line (JSON Lines with --json)")
    listing.add_argument("--status", choices=[s.value for s in EntryStatus], help="only these")
    flush = actions.add_parser(
        "flush", help="send pending entries to the cloud now (whatever the circuit breaker says)"
    )
    for sub, flags in ((listing, ("outbox",)), (flush, CLOUD_FLAGS)):
        add_config_arguments(sub, CloudConfig, only=flags)
        sub.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_cmd_outbox_list)
    flush.set_defaults(handler=_cmd_outbox_flush)


def _cmd_outbox_list(args: argparse.Namespace) -> int:
    from cloud_client.outbox import EntryStatus

    status = EntryStatus(args.status) if args.status else None
    for entry in _outbox(_cloud_config(args)).entries(status=status):
        data = entry.to_dict()
        if args.json:
            print(json.dumps(data, ensure_ascii=False), flush=True)
        else:
            question = " ".join(data["question"].split())[:60]
            print(
                f"{data['id']:>5} {data['status']:8} {data['created']} attempts "
                f"{data['attempts']} local {data['local_answer'] or '-'} cloud "
                f"{data['cloud_answer'] or '-'} ({data['last_error'] or data['reason']}) {question}"
            )
    return EXIT_OK


def _cmd_outbox_flush(args: argparse.Namespace) -> int:
    from cloud_client.client import CloudClient
    from cloud_client.outbox import flush

    cloud = _cloud_config(args)
    with CloudClient(cloud) as client:
        report = flush(_outbox(cloud), client, force=True)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        stopped = (
            f"; stopped, cloud not answering ({report.stopped_by})" if report.stopped_by else ""
        )
        print(
            f"outbox flush: {report.answered} answered, {report.failed} failed, "
            f"{report.pending} pending{stopped}"
        )
    return EXIT_SOME_FAILED if report.stopped_by or report.failed else EXIT_OK


# -- model ------------------------------------------------------------------------------------
def _cmd_model_info(args: argparse.Namespace) -> int:
    from edge_runtime.config import foggen_home
    from edge_runtime.gguf_check import inspect_gguf
    from edge_runtime.models import resolve_model

    config = _runtime_config(args)
    file = resolve_model(config.model, home=foggen_home())
    info = inspect_gguf(file.path)
    data = {
        "path": str(file.path),
        "source": file.source.value,
        "sha256": file.sha256,
        "architecture": info.architecture,
        "name": info.name,
        "quantization": info.file_type,
        "size_bytes": info.size,
        "gguf_version": info.version,
        "context_length": info.context_length,
        "n_tensors": info.n_tensors,
        "tensor_types": info.tensor_types,
    }
    if args.json:
        print(json.dumps(data))
    else:
        for key, value in data.items():
            print(f"{key:15} {value}")
    return EXIT_OK


def _cmd_model_fetch(args: argparse.Namespace) -> int:
    from edge_runtime.config import foggen_home
    from edge_runtime.gguf_check import inspect_gguf
    from edge_runtime.models import resolve_model

    config = _runtime_config(args)
    file = resolve_model(config.model, home=foggen_home())
    inspect_gguf(file.path)
    data = {"path": str(file.path), "sha256": file.sha256, "source": file.source.value}
    print(json.dumps(data) if args.json else f"{file.path}  sha256 {file.sha256}")
    return EXIT_OK


# -- convert / quantize / verify (package converter, imported only when these run) -------------
def _add_converter_commands(commands: Any) -> None:
    convert = commands.add_parser(
        "convert",
        help="HF checkpoint (+ LoRA adapter) -> GGUF, or GGUF -> HF with --from-gguf",
        description="Convert a bf16 Hugging Face Gemma-3 checkpoint (folder or hub id), with an "
        "optional PEFT LoRA adapter merged in, to GGUF; or a GGUF back to an HF checkpoint.",
    )
    convert.add_argument("source", nargs="?", help="checkpoint folder or hub id (owner/name)")
    convert.add_argument("--out", help="output .gguf")
    convert.add_argument("--dtype", default="f16", help="f32 | f16 | bf16 | q8_0 (default f16)")
    convert.add_argument("--adapter", help="PEFT LoRA adapter folder to merge")
    convert.add_argument("--from-gguf", metavar="GGUF", help="convert this GGUF back to HF")
    convert.add_argument("--to-hf", metavar="DIR", help="with --from-gguf: the new HF folder")
    convert.set_defaults(handler=_converter_command(_cmd_convert))

    quantize = commands.add_parser("quantize", help="quantize a GGUF with llama.cpp")
    quantize.add_argument("input", help="F32/F16/BF16/Q8_0 GGUF")
    quantize.add_argument("output", help="quantized GGUF to write")
    quantize.add_argument("--type", required=True, help="Q8_0 | Q6_K | Q5_K_M | Q4_K_M | Q4_0")
    quantize.add_argument("--threads", type=int, default=0, help="CPU threads (default: all)")
    quantize.set_defaults(handler=_converter_command(_cmd_quantize))

    verify = commands.add_parser(
        "verify", help="prove a GGUF matches its HF source (needs the [train] extra)"
    )
    verify.add_argument("source", help="HF checkpoint folder or hub id")
    verify.add_argument("gguf", help="the GGUF converted from it")
    verify.add_argument("--adapter", help="PEFT adapter applied on the HF side")
    verify.add_argument(
        "--prompts", type=int, default=50, help="bundled eval questions (default 50)"
    )
    verify.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads")
    verify.add_argument("--out", help="also write the JSON report here")
    verify.set_defaults(handler=_converter_command(_cmd_verify))


def _converter_command(
    command: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from converter.errors import ConverterError, MissingExtraError

        try:
            return command(args)
        except MissingExtraError as exc:
            print(f"foggen: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except ConverterError as exc:
            print(f"foggen: error: {exc}", file=sys.stderr)
            return EXIT_MODEL
        except ValueError as exc:  # a bad --dtype / --type
            print(f"foggen: error: {exc}", file=sys.stderr)
            return EXIT_USAGE

    return run


def _cmd_convert(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.from_gguf:
        from converter.to_hf import gguf_to_hf

        if not args.to_hf or args.source:
            raise ValueError("use: foggen convert --from-gguf IN.gguf --to-hf DIR")
        print(gguf_to_hf(args.from_gguf, args.to_hf))
        return EXIT_OK
    from converter.gguf_export import OutType, export_gguf
    from edge_runtime.gguf_check import inspect_gguf

    if not args.source or not args.out:
        raise ValueError("use: foggen convert SRC --out OUT.gguf [--dtype ...] [--adapter DIR]")
    out_type = OutType.parse(args.dtype)
    path = export_gguf(args.source, Path(args.out), out_type=out_type, adapter=args.adapter)
    info = inspect_gguf(path)
    print(
        json.dumps({"path": str(path), "size_bytes": info.size, "tensor_types": info.tensor_types})
    )
    return EXIT_OK


def _cmd_quantize(args: argparse.Namespace) -> int:
    from converter.quantize import QuantType, quantize

    report = quantize(args.input, args.output, QuantType.parse(args.type), threads=args.threads)
    print(json.dumps(report.to_dict()))
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from benchmarks.data import DOMAINS, stratified
    from converter.verify import verify

    per_domain = -(-args.prompts // len(DOMAINS))
    questions = stratified(per_domain)[: args.prompts]
    report = verify(args.source, args.gguf, questions, adapter=args.adapter, threads=args.threads)
    text = json.dumps(report.to_dict(), indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
