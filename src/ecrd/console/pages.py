"""The console's pages, one handler each: what it reads and writes through the AWS operations (as the
signed-in principal) and which template shows it. Handlers are blocking; ``web.page`` runs them in a thread."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any, Final

from starlette.responses import JSONResponse, Response

from ecrd.console.charts import bar_chart
from ecrd.console.commands import image_commands, repository_commands
from ecrd.console.web import SECURITY_HEADERS, View
from ecrd.domain.media_types import OCI_INDEX, OCI_MANIFEST
from ecrd.errors import (
    EcrdError,
    InvalidParameter,
    LifecyclePolicyNotFound,
    NoSuchEntity,
    RepositoryPolicyNotFound,
    ScanNotFound,
)
from ecrd.policy.document import parse_policy
from ecrd.services.access import Caller, CallerKind
from ecrd.services.registry_overview import DAY

SEVERITIES: Final = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED")
PAGE_SIZES: Final = (25, 50, 100)
MEDIA_TYPES: Final = [
    OCI_MANIFEST,
    OCI_INDEX,
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
]
SORTS: Final = {
    "pushed": lambda image: image.get("imagePushedAt") or dt.datetime.min.replace(tzinfo=dt.UTC),
    "size": lambda image: image.get("imageSizeInBytes", 0),
    "tag": lambda image: (image.get("imageTags") or ["\uffff"])[0],
    "pulled": lambda image: image.get("lastRecordedPullTime") or dt.datetime.min.replace(tzinfo=dt.UTC),
}
EXAMPLE_LIFECYCLE_POLICY: Final = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "Expire untagged images older than 14 days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 14,
                },
                "action": {"type": "expire"},
            }
        ]
    },
    indent=2,
)


def _page_size(view: View) -> int:
    wanted = view.query.get("size", "")
    return int(wanted) if wanted.isdigit() and int(wanted) in PAGE_SIZES else PAGE_SIZES[1]


def _guarded(view: View, action: Callable[[], str]) -> tuple[str, str]:
    """Run a form's action: (notice, "") when it succeeds, ("", AWS's error message) when it is refused."""
    try:
        return action(), ""
    except EcrdError as exc:
        view.record.error_code = exc.aws_type
        return "", exc.message
    finally:
        view.pin_record()


def _repository(view: View, name: str) -> dict[str, Any]:
    found: dict[str, Any] = view.call("ecr", "DescribeRepositories", repositoryNames=[name])["repositories"][0]
    return found


# -- the registry overview -------------------------------------------------------------------------------------


def overview(view: View) -> Response:
    notice = error = ""
    if view.method == "POST":

        def create() -> str:
            name = view.form.get("repository_name", "").strip()
            view.call(
                "ecr",
                "CreateRepository",
                repositoryName=name,
                imageTagMutability=view.form.get("mutability", "MUTABLE"),
                imageScanningConfiguration={"scanOnPush": view.form.get("scan_on_push") == "on"},
            )
            return f"Repository {name} created."

        notice, error = _guarded(view, create)
    size = _page_size(view)
    listing = view.call("ecr", "DescribeRepositories", maxResults=size, **_token(view))
    repositories = listing["repositories"]
    summaries = view.services.overview.repository_summaries(
        view.registry_id, [r["repositoryName"] for r in repositories]
    )
    charts = []
    access = view.registry.access
    if view.may("ecr:DescribeRepositories", access.repository_arn("*")):
        activity = view.services.overview.activity(view.registry_id, days=14)
        labels = [dt.datetime.fromtimestamp(day, dt.UTC).strftime("%m-%d") for day in activity.days]
        charts = [
            bar_chart("Images pushed per day", labels, activity.pushes),
            bar_chart("Images last pulled per day", labels, activity.pulls),
            bar_chart(
                "Largest repositories (image bytes)",
                [name for name, _ in activity.largest],
                [size for _, size in activity.largest],
                captions=[_human(size) for _, size in activity.largest],
            ),
        ]
        stored = {"hot": activity.stored_bytes, "archive": activity.archived_bytes}
    else:
        stored = {}
    return view.page(
        "overview.html",
        repositories=repositories,
        summaries=summaries,
        next_token=listing.get("nextToken"),
        size=size,
        charts=charts,
        stored=stored,
        may_create=view.may("ecr:CreateRepository", access.repository_arn("*")),
        notice=notice,
        error=error,
        day=DAY,
    )


def _human(size: int) -> str:
    from ecrd.console.web import _size

    return _size(size)


def _token(view: View) -> dict[str, str]:
    token = view.query.get("next", "")
    return {"nextToken": token} if token else {}


# -- a repository ------------------------------------------------------------------------------------------------


def repository(view: View) -> Response:
    name = view.query.get("name", "")
    notice = error = ""
    if view.method == "POST":
        notice, error = _guarded(view, lambda: _change_repository(view, name))
    repo = _repository(view, name)
    size = _page_size(view)
    status = view.query.get("status", "ANY")
    status = status if status in ("ANY", "TAGGED", "UNTAGGED") else "ANY"
    listing = view.call(
        "ecr", "DescribeImages", repositoryName=name, maxResults=size, filter={"tagStatus": status}, **_token(view)
    )
    images = listing["imageDetails"]
    wanted = view.query.get("q", "").strip().lower()
    if wanted:
        images = [
            i
            for i in images
            if any(wanted in tag.lower() for tag in i.get("imageTags", [])) or wanted in i["imageDigest"]
        ]
    sort = view.query.get("sort", "pushed")
    sort = sort if sort in SORTS else "pushed"
    descending = view.query.get("order", "desc") != "asc"
    images = [{**i, "kind": _kind(i)} for i in sorted(images, key=SORTS[sort], reverse=descending)]
    settings = view.services.settings
    return view.page(
        "repository.html",
        repository=repo,
        name=name,
        images=images,
        next_token=listing.get("nextToken"),
        size=size,
        tag_status=status,
        q=view.query.get("q", ""),
        sort=sort,
        order="desc" if descending else "asc",
        severities=SEVERITIES,
        may_write=view.may_on_repository("ecr:PutImageTagMutability", name),
        may_scan_setting=view.may_on_repository("ecr:PutImageScanningConfiguration", name),
        commands=repository_commands(
            host=view.registry_host,
            endpoint_url=settings.resolved_public_url,
            region=view.registry_id.region,
            repository=name,
        ),
        notice=notice,
        error=error,
    )


def _kind(image: dict[str, Any]) -> str:
    """What an image is, in a word: an image, a multi-platform index, or the artifact type of an artifact."""
    media_type = str(image.get("imageManifestMediaType", ""))
    artifact = str(image.get("artifactMediaType", ""))
    if "index" in media_type or "list" in media_type:
        return "index"
    if artifact and "image.config" not in artifact and "container.image" not in artifact:
        return artifact.removeprefix("application/").removeprefix("vnd.")
    return "image"


def _change_repository(view: View, name: str) -> str:
    change = view.form.get("change")
    if change == "mutability":
        filters = [line.strip() for line in view.form.get("exclusions", "").splitlines() if line.strip()]
        params: dict[str, Any] = {"imageTagMutability": view.form.get("mutability", "MUTABLE")}
        if filters:
            params["imageTagMutabilityExclusionFilters"] = [{"filterType": "WILDCARD", "filter": f} for f in filters]
        view.call("ecr", "PutImageTagMutability", repositoryName=name, **params)
        return "Tag mutability saved."
    if change == "scanning":
        view.call(
            "ecr",
            "PutImageScanningConfiguration",
            repositoryName=name,
            imageScanningConfiguration={"scanOnPush": view.form.get("scan_on_push") == "on"},
        )
        return "Scan on push saved."
    raise InvalidParameter("Unknown change.")


# -- an image --------------------------------------------------------------------------------------------------


def image(view: View) -> Response:
    name, digest = view.query.get("repository", ""), view.query.get("digest", "")
    image_id = {"imageDigest": digest}
    detail = view.call("ecr", "DescribeImages", repositoryName=name, imageIds=[image_id])["imageDetails"][0]
    got = view.call("ecr", "BatchGetImage", repositoryName=name, imageIds=[image_id], acceptedMediaTypes=MEDIA_TYPES)
    manifest: dict[str, Any] = json.loads(got["images"][0]["imageManifest"]) if got["images"] else {}
    referrers = view.call("ecr", "ListImageReferrers", repositoryName=name, subjectId=image_id).get("referrers", [])
    findings: list[dict[str, Any]] = []
    scan_status: dict[str, Any] = {}
    counts: dict[str, int] = {}
    next_findings = None
    try:
        params: dict[str, Any] = {"repositoryName": name, "imageId": image_id, "maxResults": 100}
        if view.query.get("findings"):
            params["nextToken"] = view.query["findings"]
        scan = view.call("ecr", "DescribeImageScanFindings", **params)
        scan_status = scan["imageScanStatus"]
        found = scan.get("imageScanFindings") or {}
        counts = found.get("findingSeverityCounts") or {}
        findings = [_finding(f) for f in found.get("findings", [])]
        next_findings = scan.get("nextToken")
    except ScanNotFound as exc:
        scan_status = {"status": "NOT_SCANNED", "description": exc.message}
    chart = bar_chart("Findings by severity", list(SEVERITIES), [counts.get(s, 0) for s in SEVERITIES])
    settings = view.services.settings
    return view.page(
        "image.html",
        name=name,
        digest=digest,
        detail=detail,
        manifest=manifest,
        manifest_text=json.dumps(manifest, indent=2),
        referrers=referrers,
        scan_status=scan_status,
        counts=counts,
        findings=findings,
        next_findings=next_findings,
        severity_chart=chart,
        commands=image_commands(
            host=view.registry_host,
            endpoint_url=settings.resolved_public_url,
            region=view.registry_id.region,
            repository=name,
            digest=digest,
        ),
    )


def _finding(raw: dict[str, Any]) -> dict[str, Any]:
    attributes = {a["key"]: a.get("value", "") for a in raw.get("attributes", [])}
    return {
        "name": raw.get("name", ""),
        "severity": raw.get("severity", "UNDEFINED"),
        "uri": raw.get("uri", ""),
        "description": raw.get("description", ""),
        "package": attributes.get("package_name", ""),
        "installed": attributes.get("package_version", ""),
        "fixed": attributes.get("fixed_version", ""),
    }


def sbom(view: View) -> Response:
    name, digest = view.query.get("repository", ""), view.query.get("digest", "")
    # The SBOM is what the scan found in the image: who may read the findings may read it.
    view.authorize("ecr:DescribeImageScanFindings", view.registry.access.repository_arn(name), repository=name)
    registry = view.registry.registry
    repository_record = registry.get_repository(name)
    document = view.registry.scanning.sbom(repository_record, digest)
    filename = f"sbom-{name.replace('/', '_')}-{digest.removeprefix('sha256:')[:12]}.cdx.json"
    return Response(
        json.dumps(document, indent=2),
        media_type="application/vnd.cyclonedx+json",
        headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


# -- the lifecycle policy editor ---------------------------------------------------------------------------------


def lifecycle(view: View) -> Response:
    name = view.query.get("name", "")
    notice = error = ""
    preview: list[dict[str, Any]] | None = None
    text = view.form.get("policy", "")
    if view.method == "POST" and view.form.get("change") == "save":

        def save() -> str:
            view.call("ecr", "PutLifecyclePolicy", repositoryName=name, lifecyclePolicyText=text)
            return "Lifecycle policy saved."

        notice, error = _guarded(view, save)
    elif view.method == "POST" and view.form.get("change") == "delete":

        def delete() -> str:
            view.call("ecr", "DeleteLifecyclePolicy", repositoryName=name)
            return "Lifecycle policy deleted."

        notice, error = _guarded(view, delete)
        text = ""
    elif view.method == "POST":

        def run_preview() -> str:
            nonlocal preview
            preview = _preview(view, name, text)
            return f"{len(preview)} images would be acted on. Nothing has changed yet."

        notice, error = _guarded(view, run_preview)
    if view.method == "GET" or (view.form.get("change") == "delete" and not error):
        try:
            text = view.call("ecr", "GetLifecyclePolicy", repositoryName=name)["lifecyclePolicyText"]
            text = json.dumps(json.loads(text), indent=2)
        except LifecyclePolicyNotFound:
            text = EXAMPLE_LIFECYCLE_POLICY
    return view.page(
        "lifecycle.html",
        name=name,
        policy=text,
        preview=preview,
        may_save=view.may_on_repository("ecr:PutLifecyclePolicy", name),
        notice=notice,
        error=error,
    )


def _preview(view: View, name: str, text: str) -> list[dict[str, Any]]:
    """What the policy would do now, by the same evaluator as the runs and StartLifecyclePolicyPreview, without
    queueing a preview job: the console waits for no worker."""
    services = view.registry
    view.authorize("ecr:StartLifecyclePolicyPreview", services.access.repository_arn(name), repository=name)
    from ecrd.services.lifecycle import checked_policy

    planned = services.lifecycle.plan(services.registry.get_repository(name), checked_policy(text))
    return [
        {
            "digest": p.digest,
            "tags": p.tags,
            "pushed_at": p.pushed_at,
            "rule": p.rule_priority,
            "action": p.action.upper(),
            "target": p.target_storage_class,
            "follows": p.follows,
        }
        for p in planned
    ]


# -- the repository policy editor and the policy check ------------------------------------------------------------


def policy(view: View) -> Response:
    name = view.query.get("name", "")
    notice = error = ""
    explanation = None
    text = view.form.get("policy", "")
    change = view.form.get("change")
    if change == "save":

        def save() -> str:
            view.call("ecr", "SetRepositoryPolicy", repositoryName=name, policyText=text)
            return "Repository policy saved."

        notice, error = _guarded(view, save)
    elif change == "delete":

        def delete() -> str:
            view.call("ecr", "DeleteRepositoryPolicy", repositoryName=name)
            return "Repository policy deleted."

        notice, error = _guarded(view, delete)
    elif change == "check":

        def check() -> str:
            nonlocal explanation
            explanation = _explain(
                view, name, view.form.get("principal", "").strip(), view.form.get("action", "").strip()
            )
            return ""

        notice, error = _guarded(view, check)
    if view.method == "GET" or change in ("delete", "check"):
        try:
            text = view.call("ecr", "GetRepositoryPolicy", repositoryName=name)["policyText"]
            text = json.dumps(json.loads(text), indent=2)
        except RepositoryPolicyNotFound:
            text = ""
    return view.page(
        "policy.html",
        name=name,
        policy=text,
        explanation=explanation,
        check_principal=view.form.get("principal", view.session.caller.arn),
        check_action=view.form.get("action", "ecr:BatchGetImage"),
        may_save=view.may_on_repository("ecr:SetRepositoryPolicy", name),
        notice=notice,
        error=error,
    )


def _explain(view: View, repository_name: str, principal_arn: str, action: str) -> Any:
    """The engine's decision for ``principal_arn`` doing ``action`` on the repository, statement by statement.
    Asking is IAM's policy simulation: the asker needs iam:SimulatePrincipalPolicy on the principal."""
    view.authorize("iam:SimulatePrincipalPolicy", principal_arn)
    caller = _principal(view, principal_arn)
    services = view.registry
    if not action or ":" not in action:
        raise InvalidParameter("The action must look like service:Action, e.g. ecr:BatchGetImage.")
    return services.access.authorizer.explain(  # type: ignore[attr-defined]
        caller, action, services.access.repository_arn(repository_name), repository=repository_name
    )


def _principal(view: View, arn: str) -> Caller:
    account = view.registry_id.account_id
    identity = view.registry.identity
    if arn == f"arn:aws:iam::{account}:root":
        return Caller(arn=arn, account_id=account, kind=CallerKind.ROOT, user_id=account)
    prefix = f"arn:aws:iam::{account}:user/"
    if arn.startswith(prefix):
        user = identity.users.get_user(arn.rsplit("/", 1)[-1])
        return Caller(
            arn=user.arn(account), account_id=account, kind=CallerKind.USER, user_id=user.id, username=user.name
        )
    prefix = f"arn:aws:iam::{account}:role/"
    if arn.startswith(prefix):
        role = identity.roles.get_role(arn.rsplit("/", 1)[-1])
        return Caller(
            arn=f"arn:aws:sts::{account}:assumed-role/{role.name}/console-check",
            account_id=account,
            kind=CallerKind.ASSUMED_ROLE,
            user_id=f"{role.id}:console-check",
            aliases=(role.arn(account),),
        )
    raise InvalidParameter(f"Not a principal of account {account}: give a user, role or root ARN.")


def validate_policy(view: View) -> Response:
    """Validation as the editor is typed in: the engine's own parser, no side effect."""
    try:
        if view.form.get("kind") == "identity":
            parse_policy(view.form.get("policy", ""), kind="identity")
        else:
            parse_policy(view.form.get("policy", ""), kind="resource")
    except EcrdError as exc:
        return JSONResponse({"valid": False, "message": exc.message}, headers=SECURITY_HEADERS)
    return JSONResponse({"valid": True, "message": "The policy is valid."}, headers=SECURITY_HEADERS)


# -- IAM ---------------------------------------------------------------------------------------------------------


def users(view: View) -> Response:
    notice = error = ""
    if view.method == "POST":

        def create() -> str:
            name = view.form.get("user_name", "").strip()
            view.call("iam", "CreateUser", UserName=name)
            return f"User {name} created."

        notice, error = _guarded(view, create)
    params: dict[str, Any] = {"MaxItems": _page_size(view)}
    if view.query.get("next"):
        params["Marker"] = view.query["next"]
    listing = view.call("iam", "ListUsers", **params)
    account = view.registry_id.account_id
    return view.page(
        "users.html",
        users=listing["Users"],
        next_token=listing.get("Marker") if listing.get("IsTruncated") else None,
        may_create=view.may("iam:CreateUser", f"arn:aws:iam::{account}:user/*"),
        notice=notice,
        error=error,
    )


def user(view: View) -> Response:
    name = view.path_params["user"]
    notice = error = ""
    new_key: dict[str, Any] | None = None
    if view.method == "POST":

        def change() -> str:
            nonlocal new_key
            what = view.form.get("change")
            if what == "create_key":
                new_key = view.call("iam", "CreateAccessKey", UserName=name)["AccessKey"]
                return "Access key created. Its secret is shown this once: copy it now."
            if what in ("Active", "Inactive"):
                view.call("iam", "UpdateAccessKey", UserName=name, AccessKeyId=view.form.get("key", ""), Status=what)
                return f"Access key made {what.lower()}."
            if what == "delete_key":
                view.call("iam", "DeleteAccessKey", UserName=name, AccessKeyId=view.form.get("key", ""))
                return "Access key deleted."
            if what == "password":
                _set_password(view, name)
                return "Console password set."
            if what == "delete_password":
                view.call("iam", "DeleteLoginProfile", UserName=name)
                return "Console password removed."
            if what == "attach":
                view.call("iam", "AttachUserPolicy", UserName=name, PolicyArn=view.form.get("policy_arn", "").strip())
                return "Policy attached."
            if what == "detach":
                view.call("iam", "DetachUserPolicy", UserName=name, PolicyArn=view.form.get("policy_arn", ""))
                return "Policy detached."
            raise InvalidParameter("Unknown change.")

        notice, error = _guarded(view, change)
    found = view.call("iam", "GetUser", UserName=name)["User"]
    keys = view.call("iam", "ListAccessKeys", UserName=name)["AccessKeyMetadata"]
    attached = view.call("iam", "ListAttachedUserPolicies", UserName=name)["AttachedPolicies"]
    inline = view.call("iam", "ListUserPolicies", UserName=name)["PolicyNames"]
    groups = view.call("iam", "ListGroupsForUser", UserName=name)["Groups"]
    try:
        login_profile: dict[str, Any] | None = view.call("iam", "GetLoginProfile", UserName=name)["LoginProfile"]
    except NoSuchEntity:
        login_profile = None
    arn = found["Arn"]
    return view.page(
        "user.html",
        user=found,
        keys=keys,
        new_key=new_key,
        attached=attached,
        inline=inline,
        groups=groups,
        login_profile=login_profile,
        may_keys=view.may("iam:CreateAccessKey", arn),
        may_password=view.may("iam:UpdateLoginProfile", arn) or view.may("iam:CreateLoginProfile", arn),
        may_attach=view.may("iam:AttachUserPolicy", arn),
        notice=notice,
        error=error,
    )


def _set_password(view: View, name: str) -> None:
    password = view.form.get("password", "")
    reset = view.form.get("reset_required") == "on"
    try:
        view.call("iam", "GetLoginProfile", UserName=name)
    except NoSuchEntity:
        view.call("iam", "CreateLoginProfile", UserName=name, Password=password, PasswordResetRequired=reset)
        return
    view.call("iam", "UpdateLoginProfile", UserName=name, Password=password, PasswordResetRequired=reset)


def change_password(view: View) -> Response:
    notice = error = ""
    if view.method == "POST":

        def change() -> str:
            if view.form.get("new_password") != view.form.get("confirm_password"):
                raise InvalidParameter("The new passwords do not match.")
            view.call(
                "iam",
                "ChangePassword",
                OldPassword=view.form.get("old_password", ""),
                NewPassword=view.form.get("new_password", ""),
            )
            view.services.sessions.password_changed(view.session.session_id)
            return "Your password has been changed."

        notice, error = _guarded(view, change)
    return view.page(
        "change_password.html",
        must_change=view.session.must_change_password and not notice,
        notice=notice,
        error=error,
    )


# -- KMS ---------------------------------------------------------------------------------------------------------


def kms_keys(view: View) -> Response:
    params: dict[str, Any] = {"Limit": _page_size(view)}
    if view.query.get("next"):
        params["Marker"] = view.query["next"]
    listing = view.call("kms", "ListKeys", **params)
    keys = []
    for key in listing["Keys"]:
        try:
            keys.append(view.call("kms", "DescribeKey", KeyId=key["KeyId"])["KeyMetadata"])
        except EcrdError as exc:
            keys.append({"KeyId": key["KeyId"], "KeyState": "—", "Description": exc.message})
    aliases: dict[str, list[str]] = {}
    try:
        for alias in view.call("kms", "ListAliases", Limit=100)["Aliases"]:
            if alias.get("TargetKeyId"):
                aliases.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
    except EcrdError:
        aliases = {}
    return view.page(
        "kms.html",
        keys=keys,
        aliases=aliases,
        next_token=listing.get("NextMarker") if listing.get("Truncated") else None,
    )


# -- the audit trail -----------------------------------------------------------------------------------------------


def audit(view: View) -> Response:
    # Reading the trail is CloudTrail's LookupEvents.
    view.authorize("cloudtrail:LookupEvents", "*")
    filters = {key: view.query.get(key, "").strip() or None for key in ("principal", "repository", "action")}
    outcome = view.query.get("outcome") if view.query.get("outcome") in ("allowed", "denied", "failed") else None
    before = view.query.get("before", "")
    until = float(before) if before.replace(".", "", 1).isdigit() else None
    size = _page_size(view)
    events = view.services.audit.events(
        principal=filters["principal"],
        repository=filters["repository"],
        action=filters["action"],
        outcome=outcome,
        account_id=view.registry_id.account_id,
        until=until,
        limit=size + 1,
    )
    more = len(events) > size
    events = events[:size]
    return view.page(
        "audit.html",
        events=events,
        filters=filters,
        outcome=outcome or "",
        next_before=repr(events[-1].time) if more and events else None,
        size=size,
    )


PAGES: Final[list[tuple[str, Callable[[View], Response], list[str]]]] = [
    ("/", overview, ["GET", "POST"]),
    ("/repository", repository, ["GET", "POST"]),
    ("/image", image, ["GET"]),
    ("/sbom", sbom, ["GET"]),
    ("/lifecycle", lifecycle, ["GET", "POST"]),
    ("/policy", policy, ["GET", "POST"]),
    ("/validate-policy", validate_policy, ["POST"]),
    ("/iam/users", users, ["GET", "POST"]),
    ("/iam/users/{user}", user, ["GET", "POST"]),
    ("/change-password", change_password, ["GET", "POST"]),
    ("/kms", kms_keys, ["GET"]),
    ("/audit", audit, ["GET"]),
]
