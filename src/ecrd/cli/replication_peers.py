"""`ecrd replication-peer`: the other ecrd deployments that serve replication destinations — where each answers
and the access key replication signs with there.

The secret access key is read from standard input (one line), as `docker login --password-stdin` reads a password,
never from a flag: a command line is visible to every user of the machine.
"""

from __future__ import annotations

import argparse
import re
import sys
from urllib.parse import urlsplit

from ecrd.domain.replication import Destination
from ecrd.errors import EcrdError

_REGISTRY_ID = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[0-9a-z-]{2,25}")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ecrd.cli.main import REGISTRY_SETTINGS, add_registry_arguments

    parser = commands.add_parser("replication-peer", help="the ecrd deployments that serve replication destinations")
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add (or change) the peer serving a registry id in a region")
    _destination_arguments(add)
    add.add_argument("--url", required=True, help="the peer's URL, e.g. https://registry.edge.example:5000")
    add.add_argument("--access-key-id", required=True, help="an access key of the peer's account")
    add.add_argument(
        "--secret-access-key-stdin",
        action="store_true",
        required=True,
        help="read the key's secret from standard input (required: a secret is never a flag)",
    )
    add_registry_arguments(add, REGISTRY_SETTINGS)
    add.set_defaults(run=run_add)
    listing = actions.add_parser("list", help="list the peers")
    add_registry_arguments(listing, REGISTRY_SETTINGS)
    listing.set_defaults(run=run_list)
    remove = actions.add_parser("remove", help="remove the peer serving a registry id in a region")
    _destination_arguments(remove)
    add_registry_arguments(remove, REGISTRY_SETTINGS)
    remove.set_defaults(run=run_remove)


def _destination_arguments(parser: argparse.ArgumentParser) -> None:
    # Named for the destination: --region is this registry's own setting.
    parser.add_argument("--destination-registry-id", required=True, help="the 12-digit account id the peer serves")
    parser.add_argument("--destination-region", required=True, help="the region the peer serves, e.g. eu-west-1")


def _destination(args: argparse.Namespace) -> Destination | None:
    registry_id, region = args.destination_registry_id, args.destination_region
    if not _REGISTRY_ID.fullmatch(registry_id) or not _REGION.fullmatch(region):
        print("ecrd: --destination-registry-id must be 12 digits and --destination-region a region", file=sys.stderr)
        return None
    return Destination(region, registry_id)


def run_add(args: argparse.Namespace) -> int:
    from ecrd.app import build_registry

    destination = _destination(args)
    if destination is None:
        return 2
    url = urlsplit(args.url)
    if url.scheme not in ("http", "https") or not url.netloc or url.path not in ("", "/") or url.query:
        print(f"ecrd: --url must be http(s)://HOST[:PORT], not {args.url!r}", file=sys.stderr)
        return 2
    secret = sys.stdin.readline().strip()
    if not secret:
        print("ecrd: no secret access key on standard input", file=sys.stderr)
        return 2
    registry = build_registry(args.settings)
    try:
        registry.replication.put_peer(destination, args.url, args.access_key_id, secret)
    except EcrdError as exc:
        print(f"ecrd: {exc.message}", file=sys.stderr)
        return 1
    finally:
        registry.close()
    print(f"replication peer for {destination.registry_id} in {destination.region}: {args.url.rstrip('/')}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ecrd.app import build_registry

    registry = build_registry(args.settings)
    try:
        peers = registry.replication.peers()
    finally:
        registry.close()
    for peer in peers:
        print(f"{peer.destination.registry_id}\t{peer.destination.region}\t{peer.url}\t{peer.access_key_id}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from ecrd.app import build_registry

    destination = _destination(args)
    if destination is None:
        return 2
    registry = build_registry(args.settings)
    try:
        registry.replication.delete_peer(destination)
    except EcrdError as exc:
        print(f"ecrd: {exc.message}", file=sys.stderr)
        return 1
    finally:
        registry.close()
    return 0
