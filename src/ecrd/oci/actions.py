"""The access seam of the data plane: which ECR action each /v2/ request performs."""

from __future__ import annotations

from typing import Final

# (route, method) → ECR action, as ECR documents the registry calls behind each action.
ACTIONS: Final[dict[tuple[str, str], str]] = {
    ("catalog", "GET"): "ecr:DescribeRepositories",
    ("tags", "GET"): "ecr:ListImages",
    ("manifest", "GET"): "ecr:BatchGetImage",
    ("manifest", "HEAD"): "ecr:BatchGetImage",
    ("manifest", "PUT"): "ecr:PutImage",
    ("manifest", "DELETE"): "ecr:BatchDeleteImage",
    ("blob", "GET"): "ecr:GetDownloadUrlForLayer",
    ("blob", "HEAD"): "ecr:BatchCheckLayerAvailability",
    ("blob", "DELETE"): "ecr:BatchDeleteImage",
    ("upload", "POST"): "ecr:InitiateLayerUpload",
    ("upload", "PATCH"): "ecr:UploadLayerPart",
    ("upload", "GET"): "ecr:UploadLayerPart",
    ("upload", "DELETE"): "ecr:UploadLayerPart",
    ("upload", "PUT"): "ecr:CompleteLayerUpload",
    # The referrers list is made of manifests' descriptors: reading it is reading images.
    ("referrers", "GET"): "ecr:BatchGetImage",
}

# A cross-repository mount reads the blob from the source repository.
MOUNT_SOURCE_ACTION: Final = "ecr:GetDownloadUrlForLayer"


def action_for(route: str, method: str) -> str | None:
    """The ECR action of a request, or None for requests that need only authentication (GET /v2/)."""
    return ACTIONS.get((route, "GET" if method == "HEAD" and route not in ("manifest", "blob") else method))
