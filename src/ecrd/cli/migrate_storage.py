"""`ecrd migrate-storage`: copy the registry's blob store to another store (an object store, another directory).

The source is where the settings say blobs are (``--data-dir``, or ``--storage-url``); the target is ``--to``,
``s3://BUCKET[/PREFIX]`` (reached with the ``--s3-*`` settings) or a directory. Run it while the registry
serves, then once more after stopping it, then start the registry on the target (docs/deployment.md).

Exit status: 0 when the target holds every object of the source, 1 when some are still missing (objects
written during the pass: run it again) or a store failed (what was copied stays; run it again), 2 on a usage
error.
"""

from __future__ import annotations

import argparse
import sys

from ecrd.cli.progress import progress_on_stderr
from ecrd.config import Settings, SettingsError
from ecrd.domain.progress import Progress, no_progress
from ecrd.errors import EcrdError
from ecrd.services.storage_migration import (
    DEFAULT_JOBS,
    ObjectMigrated,
    Outcome,
    PassReport,
    StorageMigration,
    Verification,
)

EXIT_INCOMPLETE = 1
MIB = 1024 * 1024
# What says where the blobs are and how the object store is reached: the source's settings, and the target's
# but for --to.
STORAGE_SETTINGS = (
    "storage_url",
    "s3_endpoint_url",
    "s3_region",
    "s3_path_style",
    "s3_access_key_id",
    "s3_secret_access_key",
    "region",
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ecrd.cli.main import STORE_SETTINGS, add_registry_arguments

    parser = commands.add_parser(
        "migrate-storage",
        help="copy every stored blob to another store (s3://BUCKET/PREFIX or a directory), resumably",
    )
    parser.add_argument(
        "--to",
        required=True,
        metavar="TARGET",
        help="where to copy to: s3://BUCKET[/PREFIX] (reached with the --s3-* settings) or a directory",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=DEFAULT_JOBS,
        help=f"objects copied at the same time (default: {DEFAULT_JOBS})",
    )
    add_registry_arguments(parser, (*STORE_SETTINGS, *STORAGE_SETTINGS))
    parser.set_defaults(run=run)


def target_settings(args: argparse.Namespace) -> Settings:
    """The settings of a registry whose blobs are at ``--to``: the same settings, but for where blobs are."""
    from ecrd.cli.main import settings_flags

    flags = settings_flags(args)
    if args.to.startswith("s3://"):
        flags["storage_url"] = args.to
    else:
        flags.update(storage_url="", data_dir=args.to)
    try:
        return Settings.load(flags=flags, config_file=args.config)
    except SettingsError as exc:
        raise SettingsError(f"--to {args.to}: {exc}") from None


def describe(settings: Settings) -> str:
    return settings.storage_url or str(settings.data_dir.absolute())


def run(args: argparse.Namespace) -> int:
    from ecrd.app import blob_driver

    if args.jobs < 1:
        raise SettingsError(f"--jobs {args.jobs}: must be at least 1")
    source_settings: Settings = args.settings
    target = target_settings(args)
    if describe(target).rstrip("/") == describe(source_settings).rstrip("/"):
        raise SettingsError(f"--to {args.to} is where the blobs already are")
    if not target.storage_url:
        # The target directory will hold the registry's blobs: the server's user's alone, as a data directory.
        target.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    objects = _Objects()
    migration = StorageMigration(
        blob_driver(source_settings), blob_driver(target), jobs=args.jobs, on_object=objects.update
    )
    print(f"copying blobs from {describe(source_settings)} to {describe(target)}", flush=True)
    try:
        with progress_on_stderr("migrate-storage") as progress:
            objects.progress = progress
            report = migration.copy_pass()
        verification = migration.verify()
    except (EcrdError, OSError) as exc:
        print(
            f"ecrd: migrate-storage stopped: {exc}; the objects copied so far are whole and kept: "
            "run it again to go on",
            file=sys.stderr,
        )
        return EXIT_INCOMPLETE
    print_summary(report, verification)
    return 0 if verification.complete else EXIT_INCOMPLETE


def print_summary(report: PassReport, verification: Verification) -> None:
    copied, skipped = report.objects[Outcome.COPIED], report.objects[Outcome.SKIPPED]
    rate = report.bytes[Outcome.COPIED] / MIB / report.seconds if report.seconds > 0 else 0.0
    print(
        f"copied {copied} objects ({_mib(report.bytes[Outcome.COPIED])}), skipped {skipped} already there "
        f"({_mib(report.bytes[Outcome.SKIPPED])}), {report.objects[Outcome.VANISHED]} gone from the source "
        f"meanwhile, in {report.seconds:.1f} s ({rate:.1f} MiB/s)"
    )
    if verification.complete:
        print(
            f"verified: the target holds all {verification.objects} objects of the source ({_mib(verification.bytes)})"
        )
    else:
        print(
            f"incomplete: the target lacks {verification.missing} of the source's {verification.objects} objects "
            "(written while the pass ran); run again — the last time after stopping the registry"
        )
        for name in verification.missing_names:
            print(f"  missing: {name}")
    if verification.only_in_target:
        print(
            f"{verification.only_in_target} objects are only in the target (deleted from the source since an "
            "earlier pass); garbage collection on the target removes them"
        )


def _mib(size: int) -> str:
    return f"{size / MIB:.1f} MiB"


class _Objects:
    """The pass's objects, counted as they are done (copied, skipped or gone) for the progress display."""

    def __init__(self) -> None:
        self.done = 0
        self.progress: Progress = no_progress

    def update(self, _event: ObjectMigrated) -> None:
        self.done += 1
        self.progress("objects", self.done, None)
