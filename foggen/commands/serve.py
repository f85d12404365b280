"""``foggen serve``: the kiosk HTTP service on 127.0.0.1 until SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

from edge_runtime.config import RuntimeConfig
from edge_runtime.service.config import ServiceConfig
from foggen.commands.common import add_cloud_flags, cloud_config, runtime_config
from foggen.exits import EXIT_MODEL, EXIT_OK, EXIT_SOME_FAILED
from foggen.flags import add_flags, config_from


def register(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the HTTP service (POST /v1/answer, the OpenAI chat API, /healthz, /readyz, "
        "/metrics)",
        description="Serve the model over HTTP on 127.0.0.1 (another address only with --host): "
        "POST /v1/answer, and the OpenAI chat API (GET /v1/models, POST /v1/chat/completions) "
        "through which one node can be another's cloud (--cloud-url http://gateway:8080/v1). "
        "Set FOGGEN_API_TOKEN to require a bearer token on /v1/* and /metrics. Prints "
        "'listening on URL' once bound; SIGTERM drains in-flight requests, then exits 0.",
    )
    add_flags(serve, ServiceConfig)
    add_flags(serve, RuntimeConfig)
    add_cloud_flags(serve)
    serve.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edge_runtime.service.server import ServeOutcome, check_extra, serve

    check_extra()  # before the configs: a missing extra is the first thing to fix
    outcome = serve(
        config_from(ServiceConfig, args),
        runtime_config(args),
        cloud_config(args),
        announce=lambda url: print(f"foggen serve: listening on {url}", flush=True),
    )
    return {
        ServeOutcome.DRAINED: EXIT_OK,
        ServeOutcome.NOT_STARTED: EXIT_SOME_FAILED,
        ServeOutcome.MODEL_FAILED: EXIT_MODEL,
    }[outcome]
