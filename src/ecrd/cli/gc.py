"""`ecrd gc`: collect garbage now — blobs no image references, idle upload sessions, objects no row names.

It prints what it would free, then (without ``--dry-run``) collects and prints what it did free, which may be
less: pushes go on meanwhile and a blob referenced again is kept.
"""

from __future__ import annotations

import argparse
import json

from ecrd.cli.progress import progress_on_stderr
from ecrd.services.gc import CollectionReport


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ecrd.cli.main import REGISTRY_SETTINGS, add_registry_arguments

    parser = commands.add_parser(
        "gc", help="delete blobs no image references, idle uploads and leftovers (online: servers keep serving)"
    )
    parser.add_argument("--dry-run", action="store_true", help="only print what a collection would free")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    add_registry_arguments(parser, (*REGISTRY_SETTINGS, "gc_grace_minutes", "upload_expiry_hours"))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ecrd.app import build_registry

    registry = build_registry(args.settings)
    try:
        with progress_on_stderr("gc (dry run)") as progress:
            planned = registry.gc.collect(dry_run=True, progress=progress)
        done = None
        if not args.dry_run:
            with progress_on_stderr("gc") as progress:
                done = registry.gc.collect(progress=progress)
    finally:
        registry.close()
    if args.json:
        out = {"wouldFree": planned.as_json()}
        if done is not None:
            out["freed"] = done.as_json()
        print(json.dumps(out, indent=2))
        return 0
    print(f"would free: {_summary(planned)}")
    if done is not None:
        print(f"freed:      {_summary(done)}")
    return 0


def _summary(report: CollectionReport) -> str:
    return (
        f"{report.blobs} blobs ({_size(report.bytes)}), {report.uploads} idle upload sessions, "
        f"{report.orphans} orphan objects ({_size(report.orphan_bytes)})"
    )


def _size(count: int) -> str:
    amount = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{count} bytes" if unit == "bytes" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{count} bytes"
