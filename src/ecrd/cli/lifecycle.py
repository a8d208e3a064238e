"""`ecrd lifecycle run`: apply the lifecycle policies now (one repository's, or every repository's), printing
each image acted on with the rule behind it, then a summary. ``--dry-run`` prints what a run would do."""

from __future__ import annotations

import argparse
import sys

from ecrd.cli.progress import progress_on_stderr
from ecrd.errors import EcrdError
from ecrd.services.lifecycle import RunReport

EXIT_FAILED = 1


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ecrd.cli.main import REGISTRY_SETTINGS, add_registry_arguments

    parser = commands.add_parser("lifecycle", help="lifecycle policies: run them now")
    actions = parser.add_subparsers(dest="lifecycle_command", required=True)
    run_parser = actions.add_parser(
        "run", help="expire (and archive) what the lifecycle policies select, as a scheduled run does"
    )
    run_parser.add_argument("--repository", metavar="NAME", help="only this repository (default: every one)")
    run_parser.add_argument("--dry-run", action="store_true", help="only print what a run would do")
    add_registry_arguments(run_parser, REGISTRY_SETTINGS)
    run_parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ecrd.app import build_registry

    registry = build_registry(args.settings)
    reports: list[RunReport] = []
    try:
        with progress_on_stderr("lifecycle run") as progress:
            for report in registry.lifecycle.run(args.repository, dry_run=args.dry_run, progress=progress):
                reports.append(report)
                _print_actions(report, dry_run=args.dry_run)
    except EcrdError as exc:
        print(f"ecrd: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        registry.close()
    print(_summary(reports, dry_run=args.dry_run))
    return 0


def _print_actions(report: RunReport, *, dry_run: bool) -> None:
    if report.busy:
        print(f"{report.repository}: another run is in progress; skipped")
    for action in report.actions:
        verb = action.action.lower() if not dry_run else f"would {action.action.lower()}"
        tags = ",".join(action.tags) or "<untagged>"
        cause = f"rule {action.rule_priority}" + (f", with {action.follows}" if action.follows else "")
        print(f"{report.repository}\t{action.digest}\t{tags}\t{cause}\t{verb}")


def _summary(reports: list[RunReport], *, dry_run: bool) -> str:
    expired = sum(report.count("EXPIRE") for report in reports)
    archived = sum(report.count("TRANSITION") for report in reports)
    skipped = sum(report.skipped for report in reports)
    verb = "would expire" if dry_run else "expired"
    line = (
        f"{len(reports)} repositories: {verb} {expired} images, {'would archive' if dry_run else 'archived'} {archived}"
    )
    return line + (f", {skipped} skipped (changed since the plan, or no archive)" if skipped else "")
