"""`ecrd signing-profile`: the profiles managed signing signs with (decision 0029). ``create NAME`` makes a key
and its certificate and prints the profile's ARN, to name in PutSigningConfiguration; ``list`` prints each
profile; ``trust-root`` prints the PEM certificate of the registry's signing root, for notation's trust store."""

from __future__ import annotations

import argparse
import sys

from ecrd.errors import EcrdError

EXIT_FAILED = 1


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ecrd.cli.main import REGISTRY_SETTINGS, add_registry_arguments

    parser = commands.add_parser("signing-profile", help="signing profiles of managed image signing")
    actions = parser.add_subparsers(dest="signing_profile_command", required=True)
    create = actions.add_parser("create", help="make a signing profile (a key certified by the registry)")
    create.add_argument("name", help="2 to 64 letters, digits or underscores")
    create.set_defaults(run=run, action="create")
    listing = actions.add_parser("list", help="print each profile's ARN, name and KMS key")
    listing.set_defaults(run=run, action="list")
    root = actions.add_parser("trust-root", help="print the root certificate that verifies the signatures (PEM)")
    root.set_defaults(run=run, action="trust-root")
    for sub in (create, listing, root):
        add_registry_arguments(sub, REGISTRY_SETTINGS)


def run(args: argparse.Namespace) -> int:
    from ecrd.app import build_registry

    registry = build_registry(args.settings)
    signing = registry.aws.services.signing
    try:
        if args.action == "create":
            print(signing.create_signing_profile(args.name).arn)
        elif args.action == "list":
            for profile in signing.list_signing_profiles():
                print(f"{profile.arn}\t{profile.name}\t{profile.kms_key}")
        else:
            print(signing.trust_root(), end="")
    except EcrdError as exc:
        print(f"ecrd: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        registry.close()
    return 0
