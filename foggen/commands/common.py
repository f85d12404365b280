"""What several subcommands share: the runtime and cloud configs from flags and environment."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from cloud_client.config import CloudConfig
from foggen.flags import add_flags, config_from

# the cloud's address and the client settings that differ by upstream (a LAN gateway on a
# 1.5B model needs longer timeouts than a fast cloud); the rest come from the environment
CLOUD_FLAGS = (
    "url", "model", "outbox", "connect_timeout", "read_timeout", "deadline", "retries",
)  # fmt: skip


def add_cloud_flags(parser: argparse.ArgumentParser, only: tuple[str, ...] = CLOUD_FLAGS) -> None:
    add_flags(parser, CloudConfig, only=only)


def cloud_config(args: argparse.Namespace) -> CloudConfig:
    config: CloudConfig = config_from(CloudConfig, args)
    return config


def runtime_config(args: argparse.Namespace) -> Any:
    from edge_runtime.config import RuntimeConfig
    from edge_runtime.errors import ConfigError

    if getattr(args, "tau", None) is not None and getattr(args, "tau_file", None) is not None:
        raise ConfigError("give --tau or --tau-file, not both")
    return config_from(RuntimeConfig, args)


def escalator(args: argparse.Namespace) -> contextlib.AbstractContextManager[Any]:
    """The escalator when a cloud URL is set (flag or environment), else None."""
    cloud = cloud_config(args)
    if not cloud.enabled:
        return contextlib.nullcontext(None)
    from edge_runtime.escalation import Escalator

    return Escalator.from_config(cloud)
