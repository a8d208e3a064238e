"""`ecrd events`: the registry's recent events, the deliveries that failed, redelivery, and the webhooks."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ecrd.domain.events import DETAIL_TYPES, EventFilter
from ecrd.metadata.events import DEAD, PENDING, DeliveryRecord

if TYPE_CHECKING:
    from ecrd.app import Registry

EXIT_FAILED = 1


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ecrd.cli.main import REGISTRY_SETTINGS, add_registry_arguments

    parser = commands.add_parser("events", help="registry events, failed deliveries, webhooks")
    actions = parser.add_subparsers(dest="events_command", required=True)

    recent = actions.add_parser("list", help="recent events, newest first")
    recent.add_argument("--type", dest="detail_type", choices=DETAIL_TYPES, help="only events of this detail-type")
    recent.add_argument("--repository", dest="repository_name", help="only events of this repository")
    recent.add_argument("--limit", type=int, default=50)
    recent.add_argument("--json", action="store_true", help="each event's whole envelope, one per line")
    recent.set_defaults(run=run_list)

    failed = actions.add_parser("failed", help="dead-lettered deliveries (with --retrying, those being retried too)")
    failed.add_argument("--retrying", action="store_true", help="also deliveries that failed and wait to be retried")
    failed.add_argument("--limit", type=int, default=100)
    failed.add_argument("--json", action="store_true", help="one JSON object per line")
    failed.set_defaults(run=run_failed)

    redeliver = actions.add_parser("redeliver", help="queue dead-lettered deliveries again")
    which = redeliver.add_mutually_exclusive_group(required=True)
    which.add_argument("delivery_id", nargs="?", type=int, help="the delivery's id (ecrd events failed)")
    which.add_argument("--all", action="store_true", help="every dead-lettered delivery")
    redeliver.set_defaults(run=run_redeliver)

    webhook = actions.add_parser("webhook", help="the webhooks events are delivered to")
    webhook_actions = webhook.add_subparsers(dest="webhook_command", required=True)
    add = webhook_actions.add_parser(
        "add", help="deliver events to URL (POST, signed: see the decision on events); prints its id and secret"
    )
    add.add_argument("url")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--secret", help="the signing secret (default: a random one, printed once)")
    secret.add_argument("--secret-file", type=Path, help="a file holding the signing secret")
    add.add_argument(
        "--detail-type", action="append", default=[], choices=DETAIL_TYPES, help="only this type (repeatable)"
    )
    add.add_argument(
        "--repository",
        dest="repository_patterns",
        action="append",
        default=[],
        metavar="PATTERN",
        help="only repositories matching this wildcard pattern, e.g. 'team-a/*' (repeatable)",
    )
    add.set_defaults(run=run_webhook_add)
    listed = webhook_actions.add_parser("list", help="the webhooks (never their secrets)")
    listed.set_defaults(run=run_webhook_list)
    remove = webhook_actions.add_parser("remove", help="stop delivering to a webhook; its deliveries go with it")
    remove.add_argument("webhook_id", type=int)
    remove.set_defaults(run=run_webhook_remove)

    for sub in (recent, failed, redeliver, add, listed, remove):
        add_registry_arguments(sub, REGISTRY_SETTINGS)


def _registry(args: argparse.Namespace) -> Registry:
    from ecrd.app import build_registry

    return build_registry(args.settings)


def run_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    try:
        events = registry.events.recent(detail_type=args.detail_type, repository=args.repository_name, limit=args.limit)
    finally:
        registry.close()
    for event in events:
        if args.json:
            print(event.body)
            continue
        detail = event.envelope.get("detail", {})
        action = detail.get("action-type") or detail.get("scan-status") or detail.get("sync-status") or "-"
        tag = detail.get("image-tag") or ",".join(detail.get("image-tags", [])) or "-"
        print(
            f"{_when(event.time)}  {event.detail_type:<30} {action:<8} {event.repository or '-':<30} "
            f"{detail.get('image-digest', '-')} {tag}  {event.event_id}"
        )
    return 0


def _delivery_json(record: DeliveryRecord) -> str:
    return json.dumps(
        {
            "deliveryId": record.id,
            "webhookId": record.webhook_id,
            "url": record.url,
            "eventId": record.event_id,
            "detailType": record.detail_type,
            "repository": record.repository,
            "status": record.status,
            "attempts": record.attempts,
            "nextAttemptAt": _when(record.next_attempt_at) if record.status == PENDING else None,
            "lastStatus": record.last_status,
            "lastError": record.last_error,
            "updatedAt": _when(record.updated_at),
        }
    )


def run_failed(args: argparse.Namespace) -> int:
    registry = _registry(args)
    try:
        statuses = (DEAD, PENDING) if args.retrying else (DEAD,)
        records = [
            r
            for r in registry.webhooks.deliveries(statuses, limit=args.limit)
            if r.status == DEAD or r.last_error is not None
        ]
    finally:
        registry.close()
    for record in records:
        if args.json:
            print(_delivery_json(record))
        else:
            print(
                f"{record.id}\t{record.status}\t{record.attempts} attempts\twebhook {record.webhook_id}\t"
                f"{record.detail_type}\t{record.repository or '-'}\t{record.event_id}\t{record.last_error or ''}"
            )
    return 0


def run_redeliver(args: argparse.Namespace) -> int:
    registry = _registry(args)
    try:
        count = registry.webhooks.redeliver(None if args.all else args.delivery_id)
    finally:
        registry.close()
    if not count and not args.all:
        print(f"ecrd: no dead-lettered delivery {args.delivery_id}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{count} deliveries queued again")
    return 0


def run_webhook_add(args: argparse.Namespace) -> int:
    secret: str | None = args.secret
    if args.secret_file is not None:
        secret = args.secret_file.read_text().strip()
        if not secret:
            print(f"ecrd: {args.secret_file} holds no secret", file=sys.stderr)
            return EXIT_FAILED
    registry = _registry(args)
    try:
        webhook_id, used = registry.webhooks.add(
            args.url, EventFilter(tuple(args.detail_type), tuple(args.repository_patterns)), secret
        )
    except ValueError as exc:
        print(f"ecrd: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        registry.close()
    print(f"webhook {webhook_id}")
    if secret is None:
        # Shown this once: it is stored sealed and never printed again.
        print(f"secret {used}")
    return 0


def run_webhook_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    try:
        hooks = registry.webhooks.list_webhooks()
    finally:
        registry.close()
    for hook in hooks:
        types = ",".join(hook.filter.detail_types) or "*"
        repositories = ",".join(hook.filter.repositories) or "*"
        print(f"{hook.id}\t{hook.url}\ttypes={types}\trepositories={repositories}\tsince {_when(hook.created_at)}")
    return 0


def run_webhook_remove(args: argparse.Namespace) -> int:
    registry = _registry(args)
    try:
        removed = registry.webhooks.remove(args.webhook_id)
    finally:
        registry.close()
    if not removed:
        print(f"ecrd: no webhook {args.webhook_id}", file=sys.stderr)
        return EXIT_FAILED
    return 0
