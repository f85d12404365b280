"""``foggen outbox list | flush``: escalations that fell back to the device's answer."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cloud_client.outbox import EntryStatus
from foggen.commands.common import CLOUD_FLAGS, add_cloud_flags, cloud_config
from foggen.exits import EXIT_OK, EXIT_SOME_FAILED


def register(commands: Any) -> None:
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
        add_cloud_flags(sub, only=flags)
        sub.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=run_list)
    flush.set_defaults(handler=run_flush)


def _outbox(cloud: Any) -> Any:
    from cloud_client.outbox import Outbox, default_outbox_path

    return Outbox(cloud.outbox or default_outbox_path(), lease_seconds=cloud.lease_seconds)


def run_list(args: argparse.Namespace) -> int:
    status = EntryStatus(args.status) if args.status else None
    for entry in _outbox(cloud_config(args)).entries(status=status):
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


def run_flush(args: argparse.Namespace) -> int:
    from cloud_client.client import CloudClient
    from cloud_client.outbox import flush

    cloud = cloud_config(args)
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
