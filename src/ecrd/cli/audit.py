"""`ecrd audit`: query the audit trail of writes and denials."""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from datetime import UTC, datetime

from ecrd.metadata.store import MetadataStore
from ecrd.services.audit import AuditTrail

# An age before now, as `--since 24h` reads: a count and a unit.
_AGE = re.compile(r"([0-9]+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
TIME_FORMATS = "an ISO 8601 time (e.g. 2026-11-28T10:00:00Z), epoch seconds, or an age such as 30m, 24h or 7d"


def moment(value: str) -> float:
    """A time for --since/--until, as epoch seconds: ISO 8601 (``2026-11-28T10:00:00Z``, naive means UTC),
    epoch seconds, or an age before now (``90s``, ``30m``, ``24h``, ``7d``, ``2w``)."""
    text = value.strip()
    age = _AGE.fullmatch(text)
    if age:
        return time.time() - int(age.group(1)) * _UNIT_SECONDS[age.group(2)]
    try:
        epoch = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(epoch):
            return epoch
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        # argparse shows this message as it is (a ValueError would show the function's name instead).
        raise argparse.ArgumentTypeError(f"{value!r} is not a time: use {TIME_FORMATS}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _account_id(value: str) -> str:
    if not re.fullmatch(r"[0-9]{12}", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an account id: 12 digits")
    return value


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ecrd.cli.main import STORE_SETTINGS, add_registry_arguments

    parser = commands.add_parser("audit", help="show the audit trail of writes and denials, newest first")
    parser.add_argument("--principal", help="an ARN, e.g. arn:aws:iam::000000000000:user/alice")
    parser.add_argument("--repository", dest="repository_name")
    parser.add_argument("--action", help="e.g. ecr:PutImage")
    parser.add_argument("--outcome", choices=("allowed", "denied", "failed"))
    parser.add_argument(
        "--account",
        dest="trail_account",
        type=_account_id,
        help="only the events on this account's trail: in its registries, or by its principals (default: all)",
    )
    parser.add_argument("--since", type=moment, help=f"events at or after this time: {TIME_FORMATS}")
    parser.add_argument("--until", type=moment, help="events before this time (same forms as --since)")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    add_registry_arguments(parser, STORE_SETTINGS)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    store = MetadataStore(args.settings.resolved_database_url)
    try:
        store.migrate(default_account_id=args.settings.account_id, default_region=args.settings.region)
        events = AuditTrail(store).events(
            principal=args.principal,
            repository=args.repository_name,
            action=args.action,
            outcome=args.outcome,
            account_id=args.trail_account,
            since=args.since,
            until=args.until,
            limit=args.limit,
        )
    finally:
        store.dispose()
    for event in events:
        when = datetime.fromtimestamp(event.time, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if args.json:
            print(
                json.dumps(
                    {
                        "time": when,
                        "requestId": event.request_id,
                        "principal": event.principal,
                        "action": event.action,
                        "repository": event.repository,
                        "outcome": event.outcome,
                        "status": event.status,
                        "error": event.error_code,
                        "sourceIp": event.source_ip,
                        "registryId": event.registry.account_id if event.registry else None,
                        "region": event.registry.region if event.registry else None,
                    }
                )
            )
        else:
            print(
                f"{when}  {event.outcome:<7} {event.status}  {event.action:<32} {event.repository or '-':<30} "
                f"{event.principal}"
            )
    return 0
