"""CloudConfig: flags > environment > defaults, validation, and a key that never shows."""

from __future__ import annotations

import argparse

import pytest

from cloud_client.config import CloudConfig
from cloud_client.errors import CloudConfigError
from confkit import SettingError, build_config
from foggen.flags import add_flags


def parse(argv: list[str], env: dict[str, str]) -> CloudConfig:
    parser = argparse.ArgumentParser()
    add_flags(parser, CloudConfig, only=("url", "model", "outbox"))
    return build_config(CloudConfig, flags=vars(parser.parse_args(argv)), env=env)


def test_defaults_mean_no_cloud() -> None:
    config = parse([], {})
    assert not config.enabled and config.url is None and config.api_key is None
    assert config.redact and config.never_domains == ()


def test_env_then_flag_wins() -> None:
    env = {
        "FOGGEN_CLOUD_URL": "http://127.0.0.1:8000/v1/",
        "FOGGEN_CLOUD_MODEL": "qwen",
        "FOGGEN_CLOUD_API_KEY": "sk-test",
        "FOGGEN_CLOUD_DEADLINE": "2.5",
        "FOGGEN_CLOUD_RETRIES": "0",
        "FOGGEN_CLOUD_NEVER_DOMAINS": "medical, law,,",
        "FOGGEN_CLOUD_REDACT": "off",
    }
    config = parse([], env)
    assert config.url == "http://127.0.0.1:8000/v1"  # trailing slash dropped
    assert (config.model, config.api_key, config.deadline, config.retries) == (
        "qwen", "sk-test", 2.5, 0,
    )  # fmt: skip
    assert config.never_domains == ("law", "medical") and config.redact is False
    flagged = parse(["--cloud-url", "https://cloud.example/v1", "--cloud-model", "m2"], env)
    assert (flagged.url, flagged.model) == ("https://cloud.example/v1", "m2")


def test_the_key_has_no_flag_and_no_repr() -> None:
    parser = argparse.ArgumentParser()
    add_flags(parser, CloudConfig)
    flags = " ".join(parser.format_help().split())
    assert "--api-key" not in flags and "--cloud-url" in flags and "FOGGEN_CLOUD_URL" in flags
    assert "sk-secret" not in repr(CloudConfig(url="http://127.0.0.1:1/v1", api_key="sk-secret"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"url": "127.0.0.1:8000/v1"}, "not an http"),
        ({"url": "ftp://host/v1"}, "not an http"),
        ({"url": "http://user:sk-secret@host/v1"}, "FOGGEN_CLOUD_API_KEY"),
        ({"url": "http://host/v1?key=1"}, "query"),
        ({"deadline": 0}, "deadline"),
        ({"connect_timeout": -1}, "connect_timeout"),
        ({"retries": -1}, "retries"),
        ({"retries": 11}, "retries"),
        ({"backoff": 5.0, "backoff_max": 1.0}, "backoff"),
        ({"breaker_failures": 0}, "breaker"),
        ({"never_regex": "(unclosed"}, "never_regex"),
    ],
)
def test_bad_settings_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(CloudConfigError, match=message) as info:
        CloudConfig(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError) and "sk-secret" not in str(info.value)


def test_an_unparseable_env_value_names_the_variable() -> None:
    with pytest.raises(SettingError, match="FOGGEN_CLOUD_RETRIES"):
        parse([], {"FOGGEN_CLOUD_RETRIES": "many"})
