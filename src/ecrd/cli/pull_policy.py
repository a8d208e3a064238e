"""`ecrd pull-policy put|get|delete REPOSITORY`: a repository's image pull policy (decision 0030), or with
``--template`` a repository creation template's, as the PutImagePullPolicy, GetImagePullPolicy and
DeleteImagePullPolicy operations set it, from the registry's host. A change is recorded in the audit trail under
the operation's action, with the principal ``ecrd``."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from typing import TYPE_CHECKING

from ecrd.domain.pull_policy import SEVERITIES, PullPolicy
from ecrd.domain.records import AuditEvent
from ecrd.errors import EcrdError

if TYPE_CHECKING:
    from ecrd.app import Registry

EXIT_FAILED = 1


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ecrd.cli.main import REGISTRY_SETTINGS, add_registry_arguments

    parser = commands.add_parser("pull-policy", help="image pull policies: what may be pulled from a repository")
    actions = parser.add_subparsers(dest="pull_policy_command", required=True)
    put = actions.add_parser("put", help="set a repository's pull policy (replacing its current one)")
    put.add_argument(
        "--severity-threshold",
        choices=SEVERITIES,
        help="refuse images whose latest scan has findings of this severity or higher (or no completed scan)",
    )
    put.add_argument(
        "--require-signature",
        action="append",
        default=[],
        metavar="PROFILE_ARN",
        help="refuse images without a signature by this signing profile (repeat: any one of them)",
    )
    put.add_argument(
        "--exempt",
        action="append",
        default=[],
        metavar="PRINCIPAL_ARN",
        help="a principal the policy does not apply to",
    )
    get = actions.add_parser("get", help="print a repository's pull policy (JSON)")
    delete = actions.add_parser("delete", help="remove a repository's pull policy")
    for sub, action in ((put, "put"), (get, "get"), (delete, "delete")):
        sub.add_argument("repository", help="the repository (with --template: the template's prefix)")
        sub.add_argument("--template", action="store_true", help="a repository creation template's policy")
        sub.set_defaults(run=run, action=action)
        add_registry_arguments(sub, REGISTRY_SETTINGS)


def run(args: argparse.Namespace) -> int:
    from ecrd.app import build_registry

    registry = build_registry(args.settings)
    try:
        policy = _apply(registry, args)
        if args.action != "get":
            registry.audit.record(
                AuditEvent(
                    time=time.time(),
                    request_id=str(uuid.uuid4()),
                    principal="ecrd",
                    action=f"ecrd:{args.action.capitalize()}ImagePullPolicy",
                    repository=None if args.template else args.repository,
                    outcome="allowed",
                    status=200,
                    error_code=None,
                    source_ip="",
                )
            )
    except EcrdError as exc:
        print(f"ecrd: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        registry.close()
    print(json.dumps(policy.to_json(), indent=2))
    return 0


def _apply(registry: Registry, args: argparse.Namespace) -> PullPolicy:
    service = registry.aws.services.pull_policy
    if args.action == "put":
        policy = PullPolicy(args.severity_threshold, tuple(args.require_signature), tuple(args.exempt))
    if args.template:
        prefix = args.repository
        if args.action == "get":
            return service.get_template_pull_policy(prefix)
        if args.action == "put":
            return service.put_template_pull_policy(prefix, policy)
        return service.delete_template_pull_policy(prefix)
    repository = registry.registry.get_repository(args.repository)
    if args.action == "get":
        return service.get_image_pull_policy(repository)
    if args.action == "put":
        return service.put_image_pull_policy(repository, policy)
    return service.delete_image_pull_policy(repository)
