"""`ecrd fsck`: check that the metadata store and the blob store agree, and repair what can be repaired.

Exit status: 0 when nothing is wrong (or everything found was repaired), 1 when repairable problems remain
(run again with ``--repair``), 3 when data is damaged (images that can no longer be pulled).
"""

from __future__ import annotations

import argparse
import json

from ecrd.cli.progress import progress_on_stderr
from ecrd.services.fsck import DEFAULT_GRACE_SECONDS, Fsck, FsckReport, summarize

EXIT_REPAIRABLE = 1
EXIT_DAMAGE = 3


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ecrd.cli.main import REGISTRY_SETTINGS, add_registry_arguments

    parser = commands.add_parser(
        "fsck", help="check that the metadata store and the blob store agree (and --repair what they do not)"
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="fix orphans, dangling rows and tags, and dead uploads (never touches damaged images)",
    )
    parser.add_argument(
        "--verify-digests",
        action="store_true",
        help="also decrypt every blob and manifest and check its digest (reads everything)",
    )
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=DEFAULT_GRACE_SECONDS,
        help="files younger than this may be uploads being committed: not orphans "
        f"(default: {DEFAULT_GRACE_SECONDS:.0f})",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_registry_arguments(parser, (*REGISTRY_SETTINGS, "upload_expiry_hours"))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ecrd.app import build_registry

    settings = args.settings
    registry = build_registry(settings)
    try:
        fsck = Fsck(
            registry.store,
            registry.blobs,
            registry=registry.registry,
            grace_seconds=args.grace_seconds,
            upload_expiry_seconds=settings.upload_expiry_hours * 3600.0,
            verify_digests=args.verify_digests,
        )
        with progress_on_stderr("fsck") as progress:
            report = fsck.check(progress)
        if args.repair:
            report = fsck.repair(report)
    finally:
        registry.close()
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        _print(report, repairing=args.repair)
    if report.damage:
        return EXIT_DAMAGE
    if any(not f.damage for f in report.unrepaired) or report.repair_errors:
        return EXIT_REPAIRABLE
    return 0


def _print(report: FsckReport, *, repairing: bool) -> None:
    c = report.checked
    print(
        f"checked {c.get('blob_rows', 0)} blobs ({c.get('blob_files', 0)} files), {c.get('links', 0)} links, "
        f"{c.get('manifests', 0)} manifests, {c.get('tags', 0)} tags, {c.get('uploads', 0)} uploads "
        f"in {report.seconds:.1f} s"
    )
    if "verified_blobs" in c or "verified_manifests" in c:
        print(
            f"verified the digests of {c.get('verified_blobs', 0)} blobs and {c.get('verified_manifests', 0)} "
            f"manifests ({c.get('unverifiable_blobs', 0) + c.get('unverifiable_manifests', 0)} not readable "
            "with a usable key)"
        )
    young = c.get("young_blob_files", 0) + c.get("young_upload_files", 0)
    if young:
        print(f"{young} files younger than the grace period were left alone (uploads may be committing them)")
    for finding in report.findings:
        state = "damage" if finding.damage else ("repaired" if finding in report.repaired else "repairable")
        where = f" in {finding.repository}" if finding.repository else ""
        print(f"  {state:<10}  {finding.problem} {finding.subject}{where}: {finding.detail}")
        for reference in finding.unpullable:
            print(f"              cannot be pulled: {reference}")
    for error in report.repair_errors:
        print(f"  repair failed: {error}")
    if report.clean:
        print("no problems found")
        return
    counts = ", ".join(f"{n} {problem}" for problem, n in sorted(summarize(report.findings).items()))
    print(f"{len(report.findings)} problems: {counts}")
    left = [f for f in report.unrepaired if not f.damage]
    if left and not repairing:
        print(f"run with --repair to fix {len(left)} of them")
    if report.damage:
        print(f"{len(report.damage)} are damage: the images listed cannot be pulled until they are pushed again")
