"""`ecrd sbom`: print the SBOM (CycloneDX 1.5 JSON) that the last scan of an image produced."""

from __future__ import annotations

import argparse
import json
import sys

from ecrd.errors import EcrdError


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ecrd.cli.main import REGISTRY_SETTINGS, add_registry_arguments

    parser = commands.add_parser("sbom", help="print the SBOM of a scanned image (CycloneDX 1.5 JSON)")
    parser.add_argument("--repository-name", required=True)
    parser.add_argument("--image", required=True, help="a tag, or a digest (sha256:…)")
    add_registry_arguments(parser, REGISTRY_SETTINGS)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ecrd.app import build_registry

    registry = build_registry(args.settings)
    try:
        repository = registry.registry.get_repository(args.repository_name)
        image = registry.registry.get_manifest(repository, args.image, record_pull=False)
        document = registry.scanning.sbom(repository, image.digest)
    except EcrdError as exc:
        print(f"ecrd: {exc.message}", file=sys.stderr)
        return 1
    finally:
        registry.close()
    print(json.dumps(document, indent=2))
    return 0
