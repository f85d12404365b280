"""The composition layer's own parts: the one exit table and the one flag builder."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.bench.config import BenchConfig
from benchmarks.errors import BenchConfigError
from cloud_client.errors import CloudConfigError, OutboxError
from confkit import SettingError, build_config, positive_int, setting
from converter.errors import CheckpointNotFoundError, MissingExtraError
from edge_runtime.errors import ConfigError, InvalidQuestionError, ModelNotFoundError
from foggen import exits
from foggen.cli import build_parser
from foggen.flags import add_flags, config_from


@pytest.mark.parametrize(
    "error, code",
    [
        (InvalidQuestionError("no options"), exits.EXIT_USAGE),
        (ConfigError("bad tau"), exits.EXIT_USAGE),
        (ModelNotFoundError("/x.gguf"), exits.EXIT_MODEL),  # a FileNotFoundError, yet a model one
        (MissingExtraError("torch", "train"), exits.EXIT_USAGE),
        (CheckpointNotFoundError("no such folder"), exits.EXIT_MODEL),
        (OutboxError("/o.sqlite3", "list its entries", "file is not a database"),
         exits.EXIT_SOME_FAILED),
        (CloudConfigError("not an http URL"), exits.EXIT_USAGE),
        (BenchConfigError("--small must be >= 0"), exits.EXIT_USAGE),
        (SettingError("FOGGEN_TAU: invalid value"), exits.EXIT_USAGE),
        (BrokenPipeError(), exits.EXIT_OK),
        (FileNotFoundError("none.jsonl"), exits.EXIT_USAGE),
        (KeyboardInterrupt(), exits.EXIT_INTERRUPTED),
    ],
)  # fmt: skip
def test_the_exit_table(error: BaseException, code: int) -> None:
    row = exits.exit_for(error)
    assert row is not None and row.code == code


def test_an_unexpected_error_is_not_swallowed() -> None:
    assert exits.exit_for(RuntimeError("a bug")) is None


@dataclass(frozen=True)
class Example:
    count: int = setting(3, "how many", env="EXAMPLE_COUNT", parse=positive_int)
    names: tuple[str, ...] = setting((), "names", flag="--name", repeat=True)
    out: Path = setting(Path("out"), "where", parse=Path)
    plots: bool = setting(True, "skip the plots", flag="--no-plots", switch=True)
    token: str | None = setting(None, "a secret", env="EXAMPLE_TOKEN", secret=True)
    internal: int = 0  # no setting: neither flag nor environment


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_flags(parser, Example)
    return parser.parse_args(argv)


def test_flag_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config_from(Example, parse([])) == Example()
    monkeypatch.setenv("EXAMPLE_COUNT", "5")
    monkeypatch.setenv("EXAMPLE_TOKEN", "s3cret")
    from_env = config_from(Example, parse(["--name", "a", "--name", "b", "--no-plots"]))
    assert (from_env.count, from_env.names, from_env.plots) == (5, ("a", "b"), False)
    assert from_env.token == "s3cret" and "s3cret" not in repr(from_env)
    assert config_from(Example, parse(["--count", "7", "--out", "x"])).out == Path("x")
    assert config_from(Example, parse(["--count", "7"])).count == 7
    with pytest.raises(SettingError, match="--count: invalid value '0'"):
        config_from(Example, parse(["--count", "0"]))
    with pytest.raises(ConfigError, match="EXAMPLE_COUNT"):
        monkeypatch.setenv("EXAMPLE_COUNT", "x")
        build_config(Example, flags={}, env={"EXAMPLE_COUNT": "x"}, error=ConfigError)


def test_a_secret_and_an_internal_field_get_no_flag() -> None:
    parser = argparse.ArgumentParser()
    add_flags(parser, Example)
    flags = {flag for action in parser._actions for flag in action.option_strings}
    assert {"--count", "--name", "--out", "--no-plots"} <= flags
    assert not {"--token", "--internal"} & flags
    assert "default: 3" in parser.format_help() and "env EXAMPLE_COUNT" in parser.format_help()


def test_bench_flags_come_from_bench_config() -> None:
    args = build_parser().parse_args(["bench", "--limit", "2", "--domains", "math,law"])
    assert (args.limit, args.domains) == ("2", "math,law")
    config = config_from(BenchConfig, args, cloud=None)
    assert (config.per_domain, config.domains, config.plots) == (2, ("math", "law"), True)
    with pytest.raises(SystemExit):  # --full and --limit exclude each other
        build_parser().parse_args(["bench", "--full", "--limit", "2"])
