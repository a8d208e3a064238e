"""The ECR API operations (JSON 1.1), each named after its API operation, each calling the shared services."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ecrd.aws.context import AwsContext, Operation
from ecrd.aws.ecr_scanning import ImageOfFindings, enhanced_finding, enhanced_severity_counts
from ecrd.aws.shapes import ShapeViolation, validation_error
from ecrd.domain.arns import parse_repository_arn, repository_arn
from ecrd.domain.digests import Digest
from ecrd.domain.manifests import MAX_MANIFEST_BYTES
from ecrd.domain.mutability import MUTABILITY_VALUES
from ecrd.domain.names import check_repository_name
from ecrd.domain.pages import Paging
from ecrd.domain.records import MutabilityExclusion, Repository, ScanRecord, ScanSummary, StoredManifest
from ecrd.domain.registries import RegistryId
from ecrd.errors import (
    BlobUnknown,
    EcrdError,
    EmptyUpload,
    ImageDigestMismatch,
    ImageReferencedByManifestList,
    InvalidParameter,
    KmsError,
    LayerAlreadyExists,
    LayersNotFound,
    MalformedPolicyDocument,
    ManifestUnknown,
    RangeNotSatisfiable,
    RepositoryNotFound,
)
from ecrd.policy.document import parse_policy
from ecrd.services.access import request_tag_context
from ecrd.services.kms import KMS_ENCRYPTION_TYPES, repository_kms_key
from ecrd.services.lifecycle import pull_principal
from ecrd.services.repository_settings import check_resource_tags
from ecrd.services.tokens import download_scope

# ECR's documented part size for layer uploads through the API (10 MiB quota; the model allows 20 MiB).
LAYER_PART_SIZE = 10 * 1024 * 1024
DOWNLOAD_URL_LIFETIME_SECONDS = 3600

# ECR's answer to a nextToken it did not issue.
INVALID_TOKEN = "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'"


def _paging(default_size: int, max_size: int) -> Paging:
    """ECR's pages: the default and largest page of an operation (its docs and the botocore model)."""

    def invalid_size(requested: int) -> EcrdError:
        # The door checks maxResults against the model first; this says the same if a call gets here.
        bound = "greater than or equal to 1" if requested < 1 else f"less than or equal to {max_size}"
        return validation_error(
            ShapeViolation("maxResults", requested, f"Member must have value {bound}"), protocol="json"
        )

    return Paging(default_size, max_size, lambda: InvalidParameter(INVALID_TOKEN), invalid_size)


REPOSITORY_PAGES = _paging(100, 1000)
IMAGE_PAGES = _paging(100, 1000)
FINDING_PAGES = _paging(100, 1000)
REFERRER_PAGES = _paging(20, 50)


def _position(paging: Paging, token: str | None, *shape: type) -> Any:
    """The position a token holds, checked to be this listing's: a str key, or a list of keys of ``shape``."""
    position = paging.decode(token)
    if position is None:
        return None
    if len(shape) == 1:
        if not isinstance(position, shape[0]) or isinstance(position, bool):
            raise paging.invalid_token()
        return position
    if (
        not isinstance(position, list)
        or len(position) != len(shape)
        or not all(
            isinstance(item, kind) and not isinstance(item, bool) for item, kind in zip(position, shape, strict=True)
        )
    ):
        raise paging.invalid_token()
    return tuple(position)


def _when(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def _check_registry(ctx: AwsContext, params: dict[str, Any], name: str | None = None) -> None:
    registry_id = params.get("registryId")
    if registry_id is not None and registry_id != ctx.account_id:
        # One registry is served here; another account's is unknown to it.
        raise RepositoryNotFound(
            f"The repository with name '{name or ''}' does not exist in the registry with id '{registry_id}'"
        )


def _registry_url(ctx: AwsContext, registry: RegistryId | None = None) -> str:
    """The URL of a registry's data plane (ECR's proxyEndpoint), the answering one's unless told: its host name
    under --registry-domain, else the public URL."""
    settings = ctx.services.settings
    scheme = settings.resolved_public_url.split("://", 1)[0]
    return f"{scheme}://{settings.registry_host_for(registry or ctx.services.registry_id)}"


def _repository(ctx: AwsContext, params: dict[str, Any], action: str, *, for_push: bool = False) -> Repository:
    """The repository an operation names, after authorizing ``action`` on it; a push (``for_push``) to a missing
    one may create it from a CREATE_ON_PUSH template."""
    name = params["repositoryName"]
    _check_registry(ctx, params, name)
    check_repository_name(name)
    ctx.authorize_repository(action, name)
    registry = ctx.services.registry
    return registry.repository_for_push(name, ctx.caller) if for_push else registry.get_repository(name)


def _repository_json(ctx: AwsContext, repository: Repository) -> dict[str, Any]:
    settings = ctx.services.settings
    out: dict[str, Any] = {
        "repositoryArn": repository_arn(ctx.region, ctx.account_id, repository.name),
        "registryId": ctx.account_id,
        "repositoryName": repository.name,
        "repositoryUri": f"{settings.registry_host_for(repository.registry)}/{repository.name}",
        "createdAt": _when(repository.created_at),
        "imageTagMutability": repository.image_tag_mutability,
        "imageScanningConfiguration": {"scanOnPush": repository.scan_on_push},
        "encryptionConfiguration": {"encryptionType": repository.encryption_type},
    }
    if repository.mutability_exclusions:
        out["imageTagMutabilityExclusionFilters"] = _exclusions_json(repository.mutability_exclusions)
    if repository.kms_key:
        out["encryptionConfiguration"]["kmsKey"] = repository.kms_key
    return out


def _exclusions_json(exclusions: tuple[MutabilityExclusion, ...]) -> list[dict[str, str]]:
    return [{"filterType": e.filter_type, "filter": e.filter} for e in exclusions]


def _mutability(params: dict[str, Any]) -> tuple[str, tuple[MutabilityExclusion, ...]]:
    mutability = params.get("imageTagMutability", "MUTABLE")
    raw = params.get("imageTagMutabilityExclusionFilters") or []
    exclusions = tuple(MutabilityExclusion(item["filterType"], item["filter"]) for item in raw)
    if mutability not in MUTABILITY_VALUES:
        raise InvalidParameter(
            f"Invalid parameter at 'imageTagMutability' failed to satisfy constraint: "
            f"'Member must satisfy enum value set: [{', '.join(MUTABILITY_VALUES)}]'"
        )
    if mutability.endswith("_WITH_EXCLUSION") and not exclusions:
        raise InvalidParameter(f"imageTagMutabilityExclusionFilters are required with {mutability}")
    if not mutability.endswith("_WITH_EXCLUSION") and exclusions:
        raise InvalidParameter(f"imageTagMutabilityExclusionFilters are not allowed with {mutability}")
    return mutability, exclusions


def _tags_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {tag["Key"]: tag.get("Value", "") for tag in tags or []}


# -- registry and repositories -----------------------------------------------------------------------------


def get_authorization_token(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    # GetAuthorizationToken has no resource-level permissions: its resource is '*'.
    ctx.authorize("ecr:GetAuthorizationToken", "*")
    issued = ctx.services.tokens.issue(ctx.caller)
    # One token opens every registry of the region (what its holder may do there, policies decide): one entry
    # per registry asked for (registryIds), each with that registry's endpoint, as ECR answers.
    registries = [RegistryId(registry_id, ctx.region) for registry_id in params.get("registryIds") or []]
    return {
        "authorizationData": [
            {
                "authorizationToken": issued.authorization_token,
                "expiresAt": _when(issued.expires_at),
                "proxyEndpoint": _registry_url(ctx, registry),
            }
            for registry in registries or [ctx.services.registry_id]
        ]
    }


def create_repository(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["repositoryName"]
    _check_registry(ctx, params, name)
    check_repository_name(name)
    tags = _tags_dict(params.get("tags"))
    check_resource_tags(tags)
    ctx.authorize_repository("ecr:CreateRepository", name, request_tag_context(tags) if tags else None)
    if tags:
        ctx.authorize_repository("ecr:TagResource", name, request_tag_context(tags))
    mutability, exclusions = _mutability(params)
    encryption = _encryption(params)
    kms_key = _repository_kms_key(ctx, encryption)
    repository = ctx.services.registry.create_repository(
        name,
        image_tag_mutability=mutability,
        mutability_exclusions=exclusions,
        scan_on_push=bool((params.get("imageScanningConfiguration") or {}).get("scanOnPush", False)),
        encryption_type=encryption["encryptionType"],
        kms_key=kms_key,
        tags=tags,
    )
    return {"repository": _repository_json(ctx, repository)}


def _encryption(params: dict[str, Any]) -> dict[str, Any]:
    """A request's encryptionConfiguration (AES256 when absent), refused when it names a key for AES256."""
    encryption: dict[str, Any] = params.get("encryptionConfiguration") or {"encryptionType": "AES256"}
    if encryption.get("kmsKey") and encryption["encryptionType"] not in KMS_ENCRYPTION_TYPES:
        raise InvalidParameter(
            "Invalid parameter at 'encryptionConfiguration' failed to satisfy constraint: "
            "'kmsKey can only be specified with encryptionType KMS'"
        )
    return encryption


def _repository_kms_key(ctx: AwsContext, encryption: dict[str, Any]) -> str | None:
    return repository_kms_key(ctx.services.kms, encryption["encryptionType"], encryption.get("kmsKey"), ctx.caller.arn)


def describe_repositories(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    _check_registry(ctx, params)
    names = params.get("repositoryNames")
    registry = ctx.services.registry
    if names is not None:
        if params.get("nextToken") or params.get("maxResults"):
            raise InvalidParameter("Invalid parameter: nextToken and maxResults cannot be used with repositoryNames")
        found = []
        for name in names:
            check_repository_name(name)
            ctx.authorize_repository("ecr:DescribeRepositories", name)
            found.append(_repository_json(ctx, registry.get_repository(name)))
        return {"repositories": found}
    ctx.authorize("ecr:DescribeRepositories", repository_arn(ctx.region, ctx.account_id, "*"))
    after = _position(REPOSITORY_PAGES, params.get("nextToken"), str)
    size = REPOSITORY_PAGES.size(params.get("maxResults"))
    page = REPOSITORY_PAGES.page_of_rows(
        registry.list_repositories(after=after, limit=size + 1), size, lambda repository: repository.name
    )
    return {"repositories": [_repository_json(ctx, r) for r in page.items], "nextToken": page.token}


def delete_repository(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["repositoryName"]
    _check_registry(ctx, params, name)
    check_repository_name(name)
    ctx.authorize_repository("ecr:DeleteRepository", name)
    repository = ctx.services.registry.delete_repository(name, force=bool(params.get("force")))
    return {"repository": _repository_json(ctx, repository)}


def describe_registry(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:DescribeRegistry", "*")
    return {"registryId": ctx.account_id, "replicationConfiguration": ctx.services.replication.configuration().json()}


def put_image_tag_mutability(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:PutImageTagMutability")
    mutability, exclusions = _mutability(params)
    ctx.services.settings_service.put_image_tag_mutability(repository, mutability, exclusions)
    out: dict[str, Any] = {
        "registryId": ctx.account_id,
        "repositoryName": repository.name,
        "imageTagMutability": mutability,
    }
    if exclusions:
        out["imageTagMutabilityExclusionFilters"] = _exclusions_json(exclusions)
    return out


def put_image_scanning_configuration(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:PutImageScanningConfiguration")
    scan_on_push = bool(params["imageScanningConfiguration"].get("scanOnPush", False))
    ctx.services.settings_service.put_scan_on_push(repository, scan_on_push)
    return {
        "registryId": ctx.account_id,
        "repositoryName": repository.name,
        "imageScanningConfiguration": {"scanOnPush": scan_on_push},
    }


# -- policies ----------------------------------------------------------------------------------------------


def _checked_policy(ctx: AwsContext, text: str, where: str, kind: str = "repository") -> str:
    try:
        document = parse_policy(text, kind="resource")
    except MalformedPolicyDocument:
        # ECR's words exactly (tools match them); it does not say what is wrong with the document.
        raise InvalidParameter(
            f"Invalid parameter at '{where}' failed to satisfy constraint: 'Invalid {kind} policy provided'"
        ) from None
    # ECR checks that the IAM users and roles a policy names exist when it is set.
    for statement in document.statements:
        for principals in (statement.principals, statement.not_principals):
            for name in principals.aws if principals is not None else ():
                if name.startswith("arn:") and not ctx.identity.principals.principal_exists(name):
                    raise InvalidParameter(
                        f"Invalid parameter at '{where}' failed to satisfy constraint: 'Principal not found'"
                    )
    return text


def set_repository_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:SetRepositoryPolicy")
    text = _checked_policy(ctx, params["policyText"], "PolicyText")
    ctx.services.settings_service.set_repository_policy(repository, text)
    return {"registryId": ctx.account_id, "repositoryName": repository.name, "policyText": text}


def get_repository_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:GetRepositoryPolicy")
    text = ctx.services.settings_service.get_repository_policy(repository)
    return {"registryId": ctx.account_id, "repositoryName": repository.name, "policyText": text}


def delete_repository_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:DeleteRepositoryPolicy")
    text = ctx.services.settings_service.delete_repository_policy(repository)
    return {"registryId": ctx.account_id, "repositoryName": repository.name, "policyText": text}


def put_registry_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:PutRegistryPolicy", "*")
    text = _checked_policy(ctx, params["policyText"], "PolicyText", "registry")
    ctx.services.settings_service.put_registry_policy(text)
    return {"registryId": ctx.account_id, "policyText": text}


def get_registry_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:GetRegistryPolicy", "*")
    return {"registryId": ctx.account_id, "policyText": ctx.services.settings_service.get_registry_policy()}


def delete_registry_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:DeleteRegistryPolicy", "*")
    return {"registryId": ctx.account_id, "policyText": ctx.services.settings_service.delete_registry_policy()}


# -- resource tags -----------------------------------------------------------------------------------------


def _tagged_repository(ctx: AwsContext, arn: str, action: str, context: dict[str, object] | None = None) -> Repository:
    parsed = parse_repository_arn(arn)
    if parsed is None:
        raise InvalidParameter("Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN'")
    if parsed[0] != ctx.region or parsed[1] != ctx.account_id:
        raise InvalidParameter(
            f"Invalid parameter at 'resourceArn' failed to satisfy constraint: "
            f"'{arn[:300]} is not a repository ARN of this registry'"
        )
    check_repository_name(parsed[2])
    ctx.authorize_repository(action, parsed[2], context)
    return ctx.services.registry.get_repository(parsed[2])


def tag_resource(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    tags = _tags_dict(params["tags"])
    check_resource_tags(tags)
    repository = _tagged_repository(ctx, params["resourceArn"], "ecr:TagResource", request_tag_context(tags))
    ctx.services.settings_service.tag_resource(repository, tags)
    return {}


def untag_resource(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    keys = params["tagKeys"]
    repository = _tagged_repository(ctx, params["resourceArn"], "ecr:UntagResource", {"aws:TagKeys": keys})
    ctx.services.settings_service.untag_resource(repository, keys)
    return {}


def list_tags_for_resource(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _tagged_repository(ctx, params["resourceArn"], "ecr:ListTagsForResource")
    tags = ctx.services.settings_service.list_tags(repository)
    return {"tags": [{"Key": k, "Value": v} for k, v in tags.items()]}


# -- images ------------------------------------------------------------------------------------------------


def list_images(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:ListImages")
    status = (params.get("filter") or {}).get("tagStatus", "ANY")
    # One item per tag of an image, one for an untagged image: the position is (digest, tag), "" for no tag.
    after = _position(IMAGE_PAGES, params.get("nextToken"), str, str)
    size = IMAGE_PAGES.size(params.get("maxResults"))
    rows = ctx.services.registry.image_ids(
        repository, tag_status=status, image_status=_image_status(params), after=after, limit=size + 1
    )
    page = IMAGE_PAGES.page_of_rows(rows, size, lambda row: (row[0], row[1] or ""))
    ids = [
        {"imageDigest": digest, "imageTag": tag} if tag is not None else {"imageDigest": digest}
        for digest, tag in page.items
    ]
    return {"imageIds": ids, "nextToken": page.token}


def _image_status(params: dict[str, Any]) -> str:
    # The model: "If not specified, only images with ACTIVE status are returned" (ListImagesFilter and
    # DescribeImagesFilter imageStatus); ANY returns all.
    return str((params.get("filter") or {}).get("imageStatus", "ACTIVE"))


def _image_detail(
    ctx: AwsContext, repository: Repository, manifest: StoredManifest, tags: list[str], scan: ScanSummary | None = None
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "registryId": ctx.account_id,
        "repositoryName": repository.name,
        "imageDigest": manifest.digest,
        "imageSizeInBytes": manifest.image_size,
        "imagePushedAt": _when(manifest.pushed_at),
        "imageManifestMediaType": manifest.media_type,
        "imageStatus": manifest.image_status,
    }
    if manifest.last_archived_at is not None:
        detail["lastArchivedAt"] = _when(manifest.last_archived_at)
    if manifest.last_activated_at is not None:
        detail["lastActivatedAt"] = _when(manifest.last_activated_at)
    if tags:
        detail["imageTags"] = tags
    if manifest.artifact_type:
        detail["artifactMediaType"] = manifest.artifact_type
    if manifest.last_pulled_at is not None:
        detail["lastRecordedPullTime"] = _when(manifest.last_pulled_at)
    if manifest.subject_digest:
        detail["subjectManifestDigest"] = manifest.subject_digest
    if scan is not None:
        detail["imageScanStatus"] = _scan_status(ctx, repository, scan)
        if scan.completed_at is not None:
            detail["imageScanFindingsSummary"] = _findings_summary(ctx, scan)
    return detail


def _scan_status(ctx: AwsContext, repository: Repository, scan: ScanRecord | ScanSummary) -> dict[str, str]:
    status, description = ctx.services.scanning.reported_status(repository, scan.status, scan.description)
    return {"status": status, "description": description}


def _findings_summary(ctx: AwsContext, scan: ScanRecord | ScanSummary) -> dict[str, Any]:
    counts = scan.severity_counts
    summary: dict[str, Any] = {
        "imageScanCompletedAt": _when(scan.completed_at),
        "findingSeverityCounts": enhanced_severity_counts(counts) if ctx.services.scanning.enhanced() else counts,
    }
    if scan.vulnerability_source_updated_at is not None:
        summary["vulnerabilitySourceUpdatedAt"] = _when(scan.vulnerability_source_updated_at)
    return summary


def _image_id_failure(image_id: dict[str, str], code: str, reason: str) -> dict[str, Any]:
    return {"imageId": image_id, "failureCode": code, "failureReason": reason}


def _image_id_problem(image_id: dict[str, str]) -> dict[str, Any] | None:
    """The failure an image id earns before any lookup (no tag and no digest, or a malformed digest)."""
    digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
    if digest is None and tag is None:
        return _image_id_failure(
            image_id, "MissingDigestAndTag", "Invalid request parameters: both tag and digest cannot be null"
        )
    if digest is not None:
        try:
            Digest.parse(digest)
        except EcrdError:
            return _image_id_failure(image_id, "InvalidImageDigest", "Invalid image digest")
    return None


def _resolve_image_ids(
    ctx: AwsContext, repository: Repository, image_ids: list[dict[str, str]], *, payloads: bool = False
) -> list[tuple[StoredManifest | None, dict[str, Any] | None]]:
    """The image each id names, or its failure, in the ids' order: the images are found in two queries whatever
    the number of ids (a batch of 100 is 100 lookups otherwise). Payloads, when asked for, stay sealed."""
    problems = [_image_id_problem(image_id) for image_id in image_ids]
    wanted = [
        (image_id.get("imageDigest"), image_id.get("imageTag"))
        for image_id, problem in zip(image_ids, problems, strict=True)
        if problem is None
    ]
    found = iter(ctx.services.registry.resolve_all(repository, wanted, payloads=payloads))
    out: list[tuple[StoredManifest | None, dict[str, Any] | None]] = []
    for image_id, problem in zip(image_ids, problems, strict=True):
        if problem is not None:
            out.append((None, problem))
            continue
        image = next(found)
        if image is None:
            code = "ImageTagDoesNotMatchDigest" if image_id.get("imageDigest") and image_id.get("imageTag") else None
            out.append((None, _image_id_failure(image_id, code or "ImageNotFound", "Requested image not found")))
        else:
            out.append((image, None))
    return out


def _resolve_image_id(
    ctx: AwsContext, repository: Repository, image_id: dict[str, str]
) -> tuple[StoredManifest | None, dict[str, Any] | None]:
    return _resolve_image_ids(ctx, repository, [image_id])[0]


def _refuse_if_key_is_gone(ctx: AwsContext, repository: Repository) -> None:
    """Images whose key is deleted (or waiting to be) can never be read again: say so, and why."""
    if repository.encryption_type not in ("KMS", "KMS_DSSE") or repository.kms_key is None:
        return
    try:
        key = ctx.services.kms.resolve_key(repository.kms_key)
    except EcrdError as exc:
        raise KmsError(
            f"The images of repository '{repository.name}' cannot be read: its KMS key "
            f"{repository.kms_key} no longer exists ({exc.message})",
            kms_error=exc.aws_type,
        ) from None
    if key.state == "PendingDeletion":
        raise KmsError(
            f"The images of repository '{repository.name}' cannot be read: its KMS key {key.arn} is pending deletion",
            kms_error="KMSInvalidStateException",
        )


def describe_images(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:DescribeImages")
    _refuse_if_key_is_gone(ctx, repository)
    registry = ctx.services.registry
    image_ids = params.get("imageIds")
    if image_ids is not None:
        if params.get("nextToken") or params.get("maxResults"):
            raise InvalidParameter("Invalid parameter: nextToken and maxResults cannot be used with imageIds")
        resolved = _resolve_image_ids(ctx, repository, image_ids)
        found_images = [
            _found_or_unknown(ctx, repository, image_id, image)
            for image_id, (image, _failure) in zip(image_ids, resolved, strict=True)
        ]
        digests = [m.digest for m in found_images]
        scans = ctx.services.scanning.scan_summaries(repository, digests)
        tags = registry.tags_of_images(repository, digests)
        return {
            "imageDetails": [
                _image_detail(ctx, repository, m, tags.get(m.digest, []), scans.get(m.digest)) for m in found_images
            ]
        }
    status = (params.get("filter") or {}).get("tagStatus", "ANY")
    after = _position(IMAGE_PAGES, params.get("nextToken"), str)
    size = IMAGE_PAGES.size(params.get("maxResults"))
    page = IMAGE_PAGES.page_of_rows(
        registry.images(repository, tag_status=status, image_status=_image_status(params), after=after, limit=size + 1),
        size,
        lambda image: image[0].digest,
    )
    scans = ctx.services.scanning.scan_summaries(repository, [m.digest for m, _tags in page.items])
    return {
        "imageDetails": [_image_detail(ctx, repository, m, t, scans.get(m.digest)) for m, t in page.items],
        "nextToken": page.token,
    }


def batch_get_image(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:BatchGetImage")
    accepted = params.get("acceptedMediaTypes")
    images, failures, pulled = [], [], []
    image_ids = params["imageIds"]
    for image_id, (found, failure) in zip(
        image_ids, _resolve_image_ids(ctx, repository, image_ids, payloads=True), strict=True
    ):
        if found is None:
            failures.append(failure)
            continue
        if found.image_status != "ACTIVE":
            # Archived images are not pulled (a 404 on the pull path); the model has no failure code of its own.
            failures.append(
                _image_id_failure(
                    image_id,
                    "ImageNotFound",
                    f"The image is {found.image_status.lower()}: restore it with UpdateImageStorageClass first",
                )
            )
            continue
        if accepted is not None and found.media_type not in accepted:
            failures.append(
                _image_id_failure(
                    image_id, "UnsupportedImageType", f"The image's media type {found.media_type} is not accepted"
                )
            )
            continue
        found = ctx.services.registry.open_manifest(repository, found)
        pulled.append(found)
        images.append(
            {
                "registryId": ctx.account_id,
                "repositoryName": repository.name,
                "imageId": {
                    "imageDigest": found.digest,
                    **({"imageTag": image_id["imageTag"]} if "imageTag" in image_id else {}),
                },
                "imageManifest": found.payload.decode("utf-8"),
                "imageManifestMediaType": found.media_type,
            }
        )
    # One write records the pulls of the whole batch, unless the caller's pulls are excluded from pull-time updates.
    ctx.services.registry.record_pulls(repository, pulled, pull_principal(ctx.caller))
    return {"images": images, "failures": failures}


def batch_delete_image(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:BatchDeleteImage")
    registry = ctx.services.registry
    deleted, failures = [], []
    for image_id in params["imageIds"]:
        tag = image_id.get("imageTag")
        found, failure = _resolve_image_id(ctx, repository, image_id)
        if found is None:
            failures.append(failure)
            continue
        try:
            if tag is not None:
                registry.untag_or_delete_image(repository, tag)
                deleted.append({"imageDigest": found.digest, "imageTag": tag})
            else:
                tags = registry.tags_of(repository, found.digest)
                registry.delete_manifest(repository, found.digest)
                deleted.extend(
                    [{"imageDigest": found.digest, "imageTag": t} for t in tags] or [{"imageDigest": found.digest}]
                )
        except ImageReferencedByManifestList as exc:
            failures.append(_image_id_failure(image_id, "ImageReferencedByManifestList", exc.message))
        except ManifestUnknown:
            failures.append(_image_id_failure(image_id, "ImageNotFound", "Requested image not found"))
    return {"imageIds": deleted, "failures": failures}


def put_image(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:PutImage", for_push=True)
    manifest_text: str = params["imageManifest"]
    payload = manifest_text.encode("utf-8")
    if len(payload) > MAX_MANIFEST_BYTES:
        raise InvalidParameter(
            "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Member must "
            f"have length less than or equal to {MAX_MANIFEST_BYTES}'"
        )
    media_type = params.get("imageManifestMediaType")
    if media_type is None:
        try:
            declared = json.loads(payload).get("mediaType")
        except (ValueError, AttributeError, RecursionError):
            declared = None
        if not declared:
            raise InvalidParameter(
                "Invalid parameter at 'imageManifestMediaType' failed to satisfy constraint: "
                "'imageManifestMediaType is required when the manifest has no mediaType'"
            )
    tag, digest = params.get("imageTag"), params.get("imageDigest")
    computed = str(Digest.of(payload, Digest.parse(digest).algorithm if digest else "sha256"))
    if digest is not None and digest != computed:
        raise ImageDigestMismatch(
            f"Invalid parameter at 'imageDigest' failed to satisfy constraint: 'The digest "
            f"{digest} does not match the manifest digest {computed}'"
        )
    # "Already exists" is decided in the push's own transaction, under the repository's lock: two PutImage calls
    # of one image at once store it once and refuse the other.
    result = ctx.services.registry.put_manifest(repository, tag or computed, payload, media_type, refuse_existing=True)
    image_id: dict[str, str] = {"imageDigest": result.digest}
    if tag:
        image_id["imageTag"] = tag
    return {
        "image": {
            "registryId": ctx.account_id,
            "repositoryName": repository.name,
            "imageId": image_id,
            "imageManifest": manifest_text,
            "imageManifestMediaType": result.manifest.media_type,
        }
    }


def list_image_referrers(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:ListImageReferrers")
    subject = params["subjectId"]["imageDigest"]
    wanted = (params.get("filter") or {}).get("artifactTypes")
    after = _position(REFERRER_PAGES, params.get("nextToken"), str)
    size = REFERRER_PAGES.size(params.get("maxResults"))
    found = ctx.services.registry.list_referrers(repository, subject, wanted, after=after, limit=size + 1)
    page = REFERRER_PAGES.page_of_rows(found, size, lambda descriptor: descriptor.digest)
    referrers = [
        {
            "digest": d.digest,
            "mediaType": d.media_type,
            "artifactType": d.artifact_type,
            "size": d.size,
            "annotations": d.annotations,
            "artifactStatus": "ACTIVE",
        }
        for d in page.items
    ]
    return {"referrers": referrers, "nextToken": page.token}


# -- scanning ----------------------------------------------------------------------------------------------


def _one_image(ctx: AwsContext, repository: Repository, image_id: dict[str, str]) -> StoredManifest:
    return _found_or_unknown(ctx, repository, image_id, _resolve_image_id(ctx, repository, image_id)[0])


def _found_or_unknown(
    ctx: AwsContext, repository: Repository, image_id: dict[str, str], found: StoredManifest | None
) -> StoredManifest:
    if found is None:
        raise ManifestUnknown(
            f"The image with imageId {{imageDigest:'{image_id.get('imageDigest', 'null')}', imageTag:"
            f"'{image_id.get('imageTag', 'null')}'}} does not exist within the repository with name "
            f"'{repository.name}' in the registry with id '{ctx.account_id}'"
        )
    return found


def start_image_scan(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:StartImageScan")
    image = _one_image(ctx, repository, params["imageId"])
    ctx.services.scanning.start_image_scan(repository, image.digest)
    return {
        "registryId": ctx.account_id,
        "repositoryName": repository.name,
        "imageId": {
            "imageDigest": image.digest,
            **({"imageTag": params["imageId"]["imageTag"]} if "imageTag" in params["imageId"] else {}),
        },
        "imageScanStatus": {"status": "IN_PROGRESS", "description": "The scan is in progress."},
    }


def describe_image_scan_findings(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:DescribeImageScanFindings")
    image = _one_image(ctx, repository, params["imageId"])
    scan = ctx.services.scanning.scan_record(repository, image.digest)
    out: dict[str, Any] = {
        "registryId": ctx.account_id,
        "repositoryName": repository.name,
        "imageId": {
            "imageDigest": image.digest,
            **({"imageTag": params["imageId"]["imageTag"]} if "imageTag" in params["imageId"] else {}),
        },
        "imageScanStatus": _scan_status(ctx, repository, scan),
    }
    if scan.completed_at is not None:
        # A scan's findings are one stored list, fixed until the next scan or re-match: the position is an
        # index into it. Enhanced scanning lists its observations (open ones first), basic its findings.
        enhanced = ctx.services.scanning.enhanced()
        listed = scan.enhanced_findings if enhanced else scan.findings
        after = _position(FINDING_PAGES, params.get("nextToken"), int)
        if after is not None and after < 0:
            raise FINDING_PAGES.invalid_token()
        size = FINDING_PAGES.size(params.get("maxResults"))
        start = 0 if after is None else after + 1
        numbered = list(enumerate(listed[start : start + size + 1], start))
        page = FINDING_PAGES.page_of_rows(numbered, size, lambda item: item[0])
        if enhanced:
            image_of = ImageOfFindings(
                ctx.account_id,
                ctx.region,
                repository.name,
                image.digest,
                ctx.services.registry.tags_of(repository, image.digest),
                image.pushed_at,
            )
            findings = {"enhancedFindings": [enhanced_finding(f, image_of) for _n, f in page.items]}
        else:
            findings = {"findings": [f for _n, f in page.items]}
        out["imageScanFindings"] = {**_findings_summary(ctx, scan), **findings}
        out["nextToken"] = page.token
    return out


def put_registry_scanning_configuration(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:PutRegistryScanningConfiguration", "*")
    scan_type = params.get("scanType", "BASIC")
    rules = params.get("rules") or []
    if len(rules) > 2:
        raise InvalidParameter("Invalid parameter at 'rules' failed to satisfy constraint: 'at most 2 rules'")
    if scan_type == "BASIC" and any(rule["scanFrequency"] == "CONTINUOUS_SCAN" for rule in rules):
        # Continuous scanning re-matches images as advisories change: enhanced scanning's, as in ECR.
        raise InvalidParameter(
            "Invalid parameter at 'scanFrequency' failed to satisfy constraint: "
            "'CONTINUOUS_SCAN is supported only with scanType ENHANCED'"
        )
    configuration = ctx.services.scanning.put_registry_configuration(scan_type, rules)
    return {"registryScanningConfiguration": configuration}


def get_registry_scanning_configuration(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:GetRegistryScanningConfiguration", "*")
    return {"registryId": ctx.account_id, "scanningConfiguration": ctx.services.scanning.registry_configuration()}


def batch_get_repository_scanning_configuration(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    configurations, failures = [], []
    configuration = ctx.services.scanning.registry_configuration()
    for name in params["repositoryNames"]:
        check_repository_name(name)
        ctx.authorize_repository("ecr:BatchGetRepositoryScanningConfiguration", name)
        try:
            repository = ctx.services.registry.get_repository(name)
        except RepositoryNotFound:
            failures.append(
                {"repositoryName": name, "failureCode": "REPOSITORY_NOT_FOUND", "failureReason": "REPOSITORY_NOT_FOUND"}
            )
            continue
        scanning = ctx.services.scanning.repository_scanning(repository, configuration)
        configurations.append(
            {
                "repositoryArn": repository_arn(ctx.region, ctx.account_id, name),
                "repositoryName": name,
                "scanOnPush": scanning.scan_on_push,
                "scanFrequency": scanning.scan_frequency,
                "appliedScanFilters": scanning.applied_filters,
            }
        )
    return {"scanningConfigurations": configurations, "failures": failures}


# -- layers ------------------------------------------------------------------------------------------------


def batch_check_layer_availability(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:BatchCheckLayerAvailability")
    digests: list[str] = params["layerDigests"]
    valid = []
    failures = []
    for digest in digests:
        try:
            Digest.parse(digest)
            valid.append(digest)
        except EcrdError:
            failures.append(
                {"layerDigest": digest, "failureCode": "InvalidLayerDigest", "failureReason": "Invalid layer digest"}
            )
    linked = ctx.services.registry.linked_blobs(repository, valid)
    layers = []
    for digest in valid:
        if digest in linked:
            layers.append({"layerDigest": digest, "layerAvailability": "AVAILABLE", "layerSize": linked[digest]})
        else:
            failures.append(
                {
                    "layerDigest": digest,
                    "failureCode": "MissingLayerDigest",
                    "failureReason": "Requested layer is not in the repository",
                }
            )
    return {"layers": layers, "failures": failures}


def get_download_url_for_layer(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:GetDownloadUrlForLayer")
    digest = params["layerDigest"]
    try:
        ctx.services.registry.blob_size(repository, digest)
    except BlobUnknown:
        raise LayersNotFound(
            f"The specified layer {digest} does not exist in the repository '{repository.name}'"
        ) from None
    issued = ctx.services.tokens.issue(
        ctx.caller, lifetime=DOWNLOAD_URL_LIFETIME_SECONDS, scope=download_scope(repository.name, digest)
    )
    url = f"{_registry_url(ctx)}/v2/{repository.name}/blobs/{digest}?token={issued.password}"
    return {"downloadUrl": url, "layerDigest": digest}


def initiate_layer_upload(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:InitiateLayerUpload", for_push=True)
    upload = ctx.services.uploads.start_upload(repository)
    return {"uploadId": upload.id, "partSize": LAYER_PART_SIZE}


def upload_layer_part(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:UploadLayerPart")
    uploads = ctx.services.uploads
    upload_id = params["uploadId"]
    data: bytes = params["layerPartBlob"]
    first, last = params["partFirstByte"], params["partLastByte"]
    if last - first + 1 != len(data):
        current = uploads.get_upload(repository, upload_id)
        raise RangeNotSatisfiable(
            f"The part's byte range {first}-{last} does not match its {len(data)} bytes",
            size=current.size,
            last_valid_byte=current.size - 1,
        )
    appender = uploads.begin_append(repository, upload_id, first)
    try:
        appender.write(data)
    except BaseException:
        uploads.abort_append(appender)
        raise
    upload = uploads.finish_append(appender)
    return {
        "registryId": ctx.account_id,
        "repositoryName": repository.name,
        "uploadId": upload_id,
        "lastByteReceived": upload.size - 1,
    }


def complete_layer_upload(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:CompleteLayerUpload")
    uploads = ctx.services.uploads
    upload_id = params["uploadId"]
    digest = params["layerDigests"][0]
    upload = uploads.get_upload(repository, upload_id)
    if upload.size == 0:
        raise EmptyUpload(f"The upload with id '{upload_id}' does not contain any layer parts")
    if ctx.services.registry.linked_blobs(repository, [digest]):
        uploads.cancel_upload(repository, upload_id)
        raise LayerAlreadyExists(f"The layer {digest} already exists in the repository '{repository.name}'")
    uploads.complete_upload(repository, upload_id, digest)
    return {
        "registryId": ctx.account_id,
        "repositoryName": repository.name,
        "uploadId": upload_id,
        "layerDigest": digest,
    }


OPERATIONS: dict[str, Operation] = {
    "GetAuthorizationToken": get_authorization_token,
    "CreateRepository": create_repository,
    "DescribeRepositories": describe_repositories,
    "DeleteRepository": delete_repository,
    "DescribeRegistry": describe_registry,
    "PutImageTagMutability": put_image_tag_mutability,
    "PutImageScanningConfiguration": put_image_scanning_configuration,
    "SetRepositoryPolicy": set_repository_policy,
    "GetRepositoryPolicy": get_repository_policy,
    "DeleteRepositoryPolicy": delete_repository_policy,
    "PutRegistryPolicy": put_registry_policy,
    "GetRegistryPolicy": get_registry_policy,
    "DeleteRegistryPolicy": delete_registry_policy,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
    "ListImages": list_images,
    "DescribeImages": describe_images,
    "BatchGetImage": batch_get_image,
    "BatchDeleteImage": batch_delete_image,
    "PutImage": put_image,
    "ListImageReferrers": list_image_referrers,
    "StartImageScan": start_image_scan,
    "DescribeImageScanFindings": describe_image_scan_findings,
    "PutRegistryScanningConfiguration": put_registry_scanning_configuration,
    "GetRegistryScanningConfiguration": get_registry_scanning_configuration,
    "BatchGetRepositoryScanningConfiguration": batch_get_repository_scanning_configuration,
    "BatchCheckLayerAvailability": batch_check_layer_availability,
    "GetDownloadUrlForLayer": get_download_url_for_layer,
    "InitiateLayerUpload": initiate_layer_upload,
    "UploadLayerPart": upload_layer_part,
    "CompleteLayerUpload": complete_layer_upload,
}

# Last: the lifecycle operations use this module's helpers.
from ecrd.aws.ecr_lifecycle import LIFECYCLE_OPERATIONS  # noqa: E402

OPERATIONS.update(LIFECYCLE_OPERATIONS)
from ecrd.aws.ecr_archive import ARCHIVE_OPERATIONS  # noqa: E402

OPERATIONS.update(ARCHIVE_OPERATIONS)
from ecrd.aws.ecr_account import ACCOUNT_OPERATIONS  # noqa: E402

OPERATIONS.update(ACCOUNT_OPERATIONS)
from ecrd.aws.ecr_templates import TEMPLATE_OPERATIONS  # noqa: E402

OPERATIONS.update(TEMPLATE_OPERATIONS)
from ecrd.aws.ecr_pull_through import PULL_THROUGH_OPERATIONS  # noqa: E402

OPERATIONS.update(PULL_THROUGH_OPERATIONS)
from ecrd.aws.ecr_replication import REPLICATION_OPERATIONS  # noqa: E402

OPERATIONS.update(REPLICATION_OPERATIONS)
from ecrd.aws.ecr_signing import SIGNING_OPERATIONS  # noqa: E402

OPERATIONS.update(SIGNING_OPERATIONS)
from ecrd.aws.ecr_pull_policy import PULL_POLICY_OPERATIONS  # noqa: E402

OPERATIONS.update(PULL_POLICY_OPERATIONS)
