"""`ecrd`: parses argv (the only module that does) and runs a command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ecrd.cli import audit, fsck, sbom, serve, vulndb
from ecrd.config import SettingsError, configuration_reference, fields_for_cli


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per Settings field, mechanically: field name ↔ --flag."""
    parser.add_argument("--config", type=Path, help="TOML file of settings (keys as the flags, without --)")
    for name, kind, help_text, default in fields_for_cli():
        flag = "--" + name.replace("_", "-")
        shown = "***" if "secret" in name else default
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecrd", description="A self-hosted registry that behaves like Amazon ECR")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the registry")
    add_settings_arguments(serve_parser)
    serve_parser.set_defaults(run=serve.run)
    reference = commands.add_parser("config-reference", help="print the settings reference (Markdown)")
    reference.set_defaults(run=lambda _args: print(configuration_reference(), end="") or 0)
    vulndb.add_parser(commands)
    sbom.add_parser(commands)
    fsck.add_parser(commands)
    audit.add_parser(commands)
    return parser


def settings_flags(args: argparse.Namespace) -> dict[str, object]:
    return {name: getattr(args, name) for name, *_ in fields_for_cli() if getattr(args, name, None) is not None}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except SettingsError as exc:
        print(f"ecrd: {exc}", file=sys.stderr)
        return 2
