"""`ecrd audit`: query the audit trail of writes and denials."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from ecrd.config import Settings
from ecrd.metadata.store import MetadataStore
from ecrd.services.audit import AuditTrail


def _time(value: str) -> float:
    """ISO 8601 (``2026-11-28T10:00:00Z``) or epoch seconds."""
    try:
        return float(value)
    except ValueError:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ecrd.cli.main import add_settings_arguments

    parser = commands.add_parser("audit", help="show the audit trail of writes and denials, newest first")
    parser.add_argument("--principal", help="an ARN, e.g. arn:aws:iam::000000000000:user/alice")
    parser.add_argument("--repository", dest="repository_name")
    parser.add_argument("--action", help="e.g. ecr:PutImage")
    parser.add_argument("--outcome", choices=("allowed", "denied", "failed"))
    parser.add_argument("--since", type=_time, help="ISO 8601 time or epoch seconds")
    parser.add_argument("--until", type=_time, help="ISO 8601 time or epoch seconds")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    add_settings_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ecrd.cli.main import settings_flags

    settings = Settings.load(flags=settings_flags(args), config_file=args.config)
    store = MetadataStore(settings.resolved_database_url)
    try:
        store.migrate()
        events = AuditTrail(store).events(principal=args.principal, repository=args.repository_name,
                                          action=args.action, outcome=args.outcome, since=args.since,
                                          until=args.until, limit=args.limit)
    finally:
        store.dispose()
    for event in events:
        when = datetime.fromtimestamp(event.time, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if args.json:
            print(json.dumps({"time": when, "requestId": event.request_id, "principal": event.principal,
                              "action": event.action, "repository": event.repository, "outcome": event.outcome,
                              "status": event.status, "error": event.error_code, "sourceIp": event.source_ip}))
        else:
            print(f"{when}  {event.outcome:<7} {event.status}  {event.action:<32} {event.repository or '-':<30} "
                  f"{event.principal}")
    return 0
