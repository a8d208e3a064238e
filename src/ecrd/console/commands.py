"""The commands a console page offers to copy: what a user types next, with this registry's host and region."""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Command:
    purpose: str
    text: str


def repository_commands(*, host: str, endpoint_url: str, region: str, repository: str) -> list[Command]:
    image = f"{host}/{repository}"
    quoted = shlex.quote(repository)
    aws = f"aws ecr --region {region} --endpoint-url {endpoint_url}"
    return [
        Command(
            "Sign docker in to this registry",
            f"{aws} get-login-password | docker login --username AWS --password-stdin {host}",
        ),
        Command("Tag a local image for this repository", f"docker tag my-image:latest {image}:latest"),
        Command("Push it", f"docker push {image}:latest"),
        Command("Pull it", f"docker pull {image}:latest"),
        Command("List its images with the AWS CLI", f"{aws} describe-images --repository-name {quoted}"),
    ]


def image_commands(*, host: str, endpoint_url: str, region: str, repository: str, digest: str) -> list[Command]:
    aws = f"aws ecr --region {region} --endpoint-url {endpoint_url}"
    quoted = shlex.quote(repository)
    return [
        Command("Pull this image by digest", f"docker pull {host}/{repository}@{digest}"),
        Command(
            "Its scan findings with the AWS CLI",
            f"{aws} describe-image-scan-findings --repository-name {quoted} --image-id imageDigest={digest}",
        ),
    ]
