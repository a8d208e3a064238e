"""`ecrd`: parses argv (the only module that does) and runs a command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Collection, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ecrd.cli import (
    accounts,
    audit,
    aws_model,
    events,
    fsck,
    gc,
    lifecycle,
    migrate_storage,
    pull_policy,
    replication_peers,
    sbom,
    serve,
    signing_profile,
    status,
    vulndb,
)
from ecrd.config import EMBEDDED_DATABASE_FILE, Settings, SettingsError, configuration_reference, fields_for_cli

EXIT_USAGE = 2  # as argparse exits on a usage error
# 128 + SIGPIPE: what a shell reports for `seq 1000000 | head`, so `ecrd audit | head` ends the same way.
EXIT_BROKEN_PIPE = 141

# The settings a command that works on an existing registry can be given: where it is, and, for commands that
# read stored blobs and keys, how its keys are found.
STORE_SETTINGS = ("data_dir", "database_url")
# Where the blobs are, for the commands that read or delete them (fsck, gc, lifecycle, sbom).
BLOB_STORE_SETTINGS = (
    "storage_url",
    "s3_endpoint_url",
    "s3_region",
    "s3_path_style",
    "s3_access_key_id",
    "s3_secret_access_key",
    "archive_dir",
)
REGISTRY_SETTINGS = (
    *STORE_SETTINGS,
    *BLOB_STORE_SETTINGS,
    "account_id",
    "region",
    "master_key",
    "master_key_file",
)


def add_settings_arguments(parser: argparse.ArgumentParser, names: Collection[str] | None = None) -> None:
    """One flag per Settings field (every field, or those ``names``), mechanically: field name ↔ --flag."""
    parser.add_argument("--config", type=Path, help="TOML file of settings (keys as the flags, without --)")
    for name, kind, help_text, default in fields_for_cli():
        if names is not None and name not in names:
            continue
        flag = "--" + name.replace("_", "-")
        shown = "***" if "secret" in name or name == "master_key" else default
        if kind is bool:
            parser.add_argument(
                flag,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{help_text} (default: {shown})",
            )
        else:
            parser.add_argument(flag, dest=name, default=None, help=f"{help_text} (default: {shown})")


def add_registry_arguments(parser: argparse.ArgumentParser, names: Collection[str]) -> None:
    """The settings of a command that works on an existing registry; ``main`` resolves them into
    ``args.settings`` and refuses a registry that is not there."""
    add_settings_arguments(parser, names)
    parser.set_defaults(existing_registry=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecrd", description="A self-hosted registry that behaves like Amazon ECR")
    parser.add_argument("--version", action="version", version=f"ecrd {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the registry")
    add_settings_arguments(serve_parser)
    serve_parser.set_defaults(run=serve.run)
    reference = commands.add_parser("config-reference", help="print the settings reference (Markdown)")
    reference.set_defaults(run=lambda _args: print(configuration_reference(), end="") or 0)
    vulndb.add_parser(commands)
    sbom.add_parser(commands)
    fsck.add_parser(commands)
    gc.add_parser(commands)
    lifecycle.add_parser(commands)
    migrate_storage.add_parser(commands)
    audit.add_parser(commands)
    status.add_parser(commands)
    replication_peers.add_parser(commands)
    events.add_parser(commands)
    signing_profile.add_parser(commands)
    pull_policy.add_parser(commands)
    aws_model.add_parser(commands)
    accounts.add_parser(commands)
    return parser


def settings_flags(args: argparse.Namespace) -> dict[str, object]:
    return {name: getattr(args, name) for name, *_ in fields_for_cli() if getattr(args, name, None) is not None}


def existing_registry_settings(args: argparse.Namespace) -> Settings:
    """The settings of the registry an admin command works on, refusing one that is not there: opening it
    would create an empty registry in its place and report on that (no advisories, no problems, no events)."""
    settings = Settings.load(flags=settings_flags(args), config_file=args.config)
    data_dir = settings.data_dir.absolute()
    advice = (
        "pass the registry's --data-dir (or set ECRD_DATA_DIR, or data_dir in --config); "
        "only `ecrd serve` creates a registry"
    )
    # The data directory is needed on PostgreSQL too: it holds the blobs and the master key.
    if not data_dir.is_dir():
        raise SettingsError(f"no registry at {data_dir}: the data directory does not exist; {advice}")
    embedded = data_dir / EMBEDDED_DATABASE_FILE
    if not settings.database_url and not embedded.is_file():
        raise SettingsError(f"no registry at {data_dir}: {embedded} does not exist; {advice}")
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _dispatch(argv)
        finally:
            # Flushed here rather than at exit, so a reader that went away is noticed while it can be handled.
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader (`| head`) has all it wanted. What is still buffered goes nowhere, quietly: the
        # interpreter flushes stdout once more on exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE


def _dispatch(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "existing_registry", False):
            args.settings = existing_registry_settings(args)
        return int(args.run(args))
    except SettingsError as exc:
        print(f"ecrd: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _version() -> str:
    try:
        return version("ecrd")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"
