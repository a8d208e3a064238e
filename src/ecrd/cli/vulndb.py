"""`ecrd vulndb`: import OSV advisory data into the vulnerability database, and show what it holds."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecrd.cli.progress import progress_on_stderr
from ecrd.errors import VulnerabilityDataInvalid
from ecrd.metadata.store import MetadataStore
from ecrd.services.vulndb import ImportReport, VulnDbStatus, VulnerabilityDatabase


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``vulndb import`` and ``vulndb status`` under the ``ecrd`` command's subcommands."""
    from ecrd.cli.main import STORE_SETTINGS, add_registry_arguments

    group = commands.add_parser("vulndb", help="the offline vulnerability database scans use")
    actions = group.add_subparsers(dest="vulndb_command", required=True)
    importer = actions.add_parser(
        "import", help="import OSV advisories: .json, .jsonl, osv.dev all.zip archives, or folders of them"
    )
    importer.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    importer.add_argument("--json", action="store_true", help="print the report as JSON")
    add_registry_arguments(importer, STORE_SETTINGS)
    importer.set_defaults(run=run_import)
    status = actions.add_parser("status", help="show the records per ecosystem and the last import")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    add_registry_arguments(status, STORE_SETTINGS)
    status.set_defaults(run=run_status)


def _database(args: argparse.Namespace) -> tuple[MetadataStore, VulnerabilityDatabase]:
    store = MetadataStore(args.settings.resolved_database_url)
    store.migrate(default_account_id=args.settings.account_id, default_region=args.settings.region)
    return store, VulnerabilityDatabase(store)


def run_import(args: argparse.Namespace) -> int:
    store, database = _database(args)
    try:
        with progress_on_stderr("vulndb import") as progress:
            report = database.import_paths(args.paths, progress)
    except VulnerabilityDataInvalid as exc:
        print(f"ecrd: {exc.message}", file=sys.stderr)
        return 2
    finally:
        store.dispose()
    if args.json:
        print(json.dumps(_report_json(report), indent=2))
    else:
        print(
            f"imported {report.records} records in {report.seconds:.1f} s: {report.inserted} new, "
            f"{report.updated} updated, {report.unchanged} unchanged, {report.skipped} skipped"
        )
        for error in report.errors:
            print(f"  skipped {error}")
        if report.rematch_queued:
            print("continuously scanned images will be re-matched against the new advisories in the background")
    return 1 if report.skipped else 0


def run_status(args: argparse.Namespace) -> int:
    store, database = _database(args)
    try:
        status = database.status()
    finally:
        store.dispose()
    if args.json:
        print(json.dumps(_status_json(status), indent=2))
        return 0
    if status.empty:
        # Said plainly: an empty database makes every scan come back without findings.
        print(
            "0 advisories: no advisories imported; scans find nothing until OSV data is imported with "
            "`ecrd vulndb import PATH` (.json, .jsonl, osv.dev all.zip, or folders of them)"
        )
    else:
        print(f"{status.records} advisories")
    if status.ecosystems:
        width = max(len(entry.ecosystem) for entry in status.ecosystems)
        for entry in sorted(status.ecosystems, key=lambda e: _natural_key(e.ecosystem)):
            print(f"  {entry.ecosystem:<{width}}  {entry.records:>7}")
    print(f"newest record modified: {_time(status.newest_modified) or 'never'}")
    last = _time(status.last_import_at)
    print(f"last import: {f'{last} from {status.last_import_source}' if last else 'never'}")
    return 0


def _natural_key(text: str) -> list[tuple[int, str]]:
    """``Alpine:v3.9`` before ``Alpine:v3.10``: numbers compare as numbers."""
    return [(int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"(\d+)", text)]


def _time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _report_json(report: ImportReport) -> dict[str, Any]:
    return {
        "sources": list(report.sources),
        "records": report.records,
        "inserted": report.inserted,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "skipped": report.skipped,
        "errors": list(report.errors),
        "seconds": round(report.seconds, 3),
        "rematch_queued": report.rematch_queued,
    }


def _status_json(status: VulnDbStatus) -> dict[str, Any]:
    return {
        "records": status.records,
        "empty": status.empty,
        "ecosystems": {entry.ecosystem: entry.records for entry in status.ecosystems},
        "newestModified": _time(status.newest_modified),
        "lastImportAt": _time(status.last_import_at),
        "lastImportSource": status.last_import_source,
    }
