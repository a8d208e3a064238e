"""`ecrd signing-profile`: the profiles managed signing signs with (decision 0029). ``create NAME`` makes a key
and its certificate and prints the profile's ARN, to name in PutSigningConfiguration; ``list`` prints each
profile; ``trust-root`` prints the PEM certificate of the deployment's signing root, for notation's trust store.

A profile belongs to one registry — an account in a region — chosen with ``--account-id`` and ``--region``
(by default the server's default account and region from the settings); the signing root is one for the whole
deployment."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ecrd.domain.registries import PARTITION_REGIONS, RegistryId, is_account_id
from ecrd.errors import EcrdError

if TYPE_CHECKING:
    from ecrd.app import Registry
    from ecrd.services.signing import SigningService

EXIT_FAILED = 1
# Settings that name the server's default registry: this command's --account-id/--region name the profile's
# registry instead, and must not change the default the registry is opened with (rows made before accounts
# existed move to it when the database is migrated).
_DEFAULT_REGISTRY_SETTINGS = ("account_id", "region")


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
    settings = [name for name in REGISTRY_SETTINGS if name not in _DEFAULT_REGISTRY_SETTINGS]
    for sub in (create, listing, root):
        _registry_arguments(sub)
        add_registry_arguments(sub, settings)


def _registry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--account-id",
        dest="profile_account_id",
        help="the 12-digit account of the profile's registry (default: the server's default account)",
    )
    parser.add_argument(
        "--region",
        dest="profile_region",
        help="the region of the profile's registry (default: the server's default region)",
    )


def chosen_registry(args: argparse.Namespace) -> RegistryId:
    """The registry the command works on: the flags', else the settings' default account and region."""
    return RegistryId(args.profile_account_id or args.settings.account_id, args.profile_region or args.settings.region)


def _refusal(chosen: RegistryId) -> str | None:
    if not is_account_id(chosen.account_id):
        return f"--account-id must be 12 digits, not {chosen.account_id!r}"
    if chosen.region not in PARTITION_REGIONS:
        return f"--region must be a region of the aws partition, not {chosen.region!r}"
    return None


def signing_service(registry: Registry, chosen: RegistryId) -> SigningService:
    """The signing service of ``chosen``, a registry of the deployment (an account it serves, in a region it
    serves); refused otherwise."""
    if not registry.registries.serves(chosen):
        raise _NotServed(f"the registry {chosen} (account {chosen.account_id}) is not one this deployment serves")
    return registry.registries.get(chosen).signing


class _NotServed(Exception):
    pass


def run(args: argparse.Namespace) -> int:
    from ecrd.app import build_registry

    chosen = chosen_registry(args)
    refusal = _refusal(chosen)
    if refusal is not None:
        print(f"ecrd: {refusal}", file=sys.stderr)
        return EXIT_FAILED
    registry = build_registry(args.settings)
    try:
        signing = signing_service(registry, chosen)
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
    except _NotServed as exc:
        print(f"ecrd: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        registry.close()
    return 0
