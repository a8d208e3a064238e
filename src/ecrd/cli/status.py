"""`ecrd status`: a summary of the registry — what it stores, what it owes (jobs), how old its advisories are."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from rich.console import Console

from ecrd.metadata.store import MetadataStore
from ecrd.services.usage import RegistryStatus, registry_status
from ecrd.services.vulndb import VulnDbStatus, VulnerabilityDatabase

# The blob store's locations, reported even when empty: "hot" is the blob store, "archive" the archive's.
LOCATIONS = ("hot", "archive")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ecrd.cli.main import STORE_SETTINGS, add_registry_arguments

    parser = commands.add_parser(
        "status", help="summarize the registry: repositories, images, storage, jobs, advisories, IAM"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_registry_arguments(parser, (*STORE_SETTINGS, "account_id"))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = args.settings
    store = MetadataStore(settings.resolved_database_url)
    try:
        store.migrate(default_account_id=settings.account_id, default_region=settings.region)
        now = time.time()
        status = registry_status(store, clock=lambda: now)
        advisories = VulnerabilityDatabase(store).status()
    finally:
        store.dispose()
    summary = status_json(status, advisories, now)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print(summary)
    return 0


def status_json(status: RegistryStatus, advisories: VulnDbStatus, now: float) -> dict[str, Any]:
    storage = {location: {"blobs": 0, "bytes": 0} for location in LOCATIONS}
    for stored in status.usage.storage:
        storage[stored.location] = {"blobs": stored.blobs, "bytes": stored.bytes}
    jobs = [
        {"kind": q.kind, "status": q.status, "count": q.count, "oldestAgeSeconds": round(q.oldest_age_seconds, 3)}
        for q in sorted(status.usage.jobs, key=lambda q: (q.kind, q.status))
    ]
    queued = [q.oldest_age_seconds for q in status.usage.jobs if q.status == "queued"]
    last_import = advisories.last_import_at
    return {
        "accounts": list(status.account_ids),
        "repositories": status.repositories,
        "images": status.images,
        "storage": storage,
        "jobs": {
            "depth": jobs,
            "pending": sum(q.count for q in status.usage.jobs if q.status == "queued"),
            "running": sum(q.count for q in status.usage.jobs if q.status == "running"),
            "oldestPendingAgeSeconds": round(max(queued), 3) if queued else None,
        },
        "advisories": {
            "records": advisories.records,
            "lastImportAt": last_import,
            "lastImportAgeSeconds": round(max(0.0, now - last_import), 3) if last_import is not None else None,
            "lastImportSource": advisories.last_import_source,
        },
        "iam": {"users": status.users, "accessKeys": status.access_keys},
    }


class _Stdout(Console):
    def on_broken_pipe(self) -> None:
        """Let ``main`` end the command as it ends any whose reader went away (status 141), not exit 1 here."""
        self.quiet = True
        raise BrokenPipeError


def _print(summary: dict[str, Any]) -> None:
    console = _Stdout(highlight=False, soft_wrap=True)
    accounts = summary["accounts"]
    noun = "account" if len(accounts) == 1 else "accounts"
    console.print(f"[bold]accounts[/]       {len(accounts)} {noun} ({', '.join(accounts)})")
    console.print(f"[bold]repositories[/]   {summary['repositories']}")
    console.print(f"[bold]images[/]         {summary['images']}")
    for location, label in (("hot", "blobs"), ("archive", "archive")):
        stored = summary["storage"][location]
        console.print(f"[bold]{label:<14}[/] {stored['blobs']} blobs, {size(stored['bytes'])}")
    jobs = summary["jobs"]
    oldest = jobs["oldestPendingAgeSeconds"]
    waiting = f", oldest pending {age(oldest)} old" if oldest is not None else ""
    console.print(f"[bold]jobs[/]           {jobs['pending']} pending, {jobs['running']} running{waiting}")
    for entry in jobs["depth"]:
        console.print(f"  {entry['kind']:<20} {entry['status']:<8} {entry['count']}")
    advisories = summary["advisories"]
    if advisories["lastImportAt"] is None:
        imported = "never imported (`ecrd vulndb import PATH`)"
    else:
        imported = f"last imported {age(advisories['lastImportAgeSeconds'])} ago"
    console.print(f"[bold]advisories[/]     {advisories['records']}, {imported}")
    iam = summary["iam"]
    console.print(f"[bold]iam[/]            {iam['users']} users, {iam['accessKeys']} access keys")


def size(count: int) -> str:
    amount = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{count} bytes" if unit == "bytes" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{count} bytes"


def age(seconds: float) -> str:
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{seconds / length:.1f} {unit}"
    return f"{seconds:.0f} s"
