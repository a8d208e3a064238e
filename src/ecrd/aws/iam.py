"""The IAM API operations (Query protocol), each named after its API operation, each calling the identity service
of its concern (users, roles, policies, permissions). The operations that users and roles share, differing only
by the noun (TagUser and TagRole, PutUserPolicy and PutRolePolicy, …), are written once, as methods of
``_Entity``, and bound to each kind by name in ``OPERATIONS``.

Each operation authorizes first, on the resource the Service Authorization Reference gives the action (the
user, role or policy ARN; ``*`` for ListPolicies), then answers with the operation's Result structure. IAM
returns policy documents URL-encoded (botocore's ``json_decode_policies`` undoes it), so they are encoded here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from ecrd.aws.context import AwsContext, Operation
from ecrd.domain.pages import Page
from ecrd.errors import InvalidParameter, ValidationError
from ecrd.services.access import CallerKind
from ecrd.services.iam.entities import Tagged
from ecrd.services.iam.groups import GroupRecord
from ecrd.services.iam.passwords import LoginProfile
from ecrd.services.iam.permissions import AttachedPolicy, Owner
from ecrd.services.iam.policies import PolicyEntities, PolicyRecord, PolicyVersionRecord
from ecrd.services.iam.roles import RoleRecord
from ecrd.services.iam.users import AccessKeyRecord, Tags, UserRecord


def _when(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def _document(text: str) -> str:
    # IAM answers every policyDocumentType value URL-encoded (RFC 3986), as botocore expects.
    return quote(text, safe="")


def _tags_in(params: dict[str, Any], member: str = "Tags") -> list[tuple[str, str]]:
    return [(tag["Key"], tag.get("Value", "")) for tag in params.get(member) or []]


def _tags_out(tags: Tags) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags]


def _page_request(params: dict[str, Any]) -> dict[str, Any]:
    return {"marker": params.get("Marker"), "max_items": params.get("MaxItems")}


def _paging(page: Page[Any], out: dict[str, Any]) -> dict[str, Any]:
    out["IsTruncated"] = page.truncated
    if page.token is not None:
        out["Marker"] = page.token
    return out


def _refuse_permissions_boundary(params: dict[str, Any]) -> None:
    if params.get("PermissionsBoundary") is not None:
        # A boundary stored but not enforced would promise a limit that does not hold.
        raise InvalidParameter("Permissions boundaries are not supported by ecrd.")


def _own_user_name(ctx: AwsContext, params: dict[str, Any]) -> str | None:
    """The UserName of operations where it defaults to the caller: None means the account root."""
    name = params.get("UserName")
    if name is not None:
        return str(name)
    if ctx.caller.kind is CallerKind.ROOT:
        return None
    if ctx.caller.kind is CallerKind.USER:
        return ctx.caller.username
    raise ValidationError("Must specify userName when calling with non-User credentials")


def _user_resource(ctx: AwsContext, name: str | None) -> str:
    return ctx.identity.principals.root_arn if name is None else ctx.identity.principals.user_arn(name)


def _user(ctx: AwsContext, user: UserRecord, *, tags: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Path": user.path,
        "UserName": user.name,
        "UserId": user.id,
        "Arn": user.arn(ctx.account_id),
        "CreateDate": _when(user.created_at),
    }
    if tags and user.tags:
        out["Tags"] = _tags_out(user.tags)
    return out


def _group(ctx: AwsContext, group: GroupRecord) -> dict[str, Any]:
    return {
        "Path": group.path,
        "GroupName": group.name,
        "GroupId": group.id,
        "Arn": group.arn(ctx.account_id),
        "CreateDate": _when(group.created_at),
    }


def _role(ctx: AwsContext, role: RoleRecord, *, tags: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Path": role.path,
        "RoleName": role.name,
        "RoleId": role.id,
        "Arn": role.arn(ctx.account_id),
        "CreateDate": _when(role.created_at),
        "AssumeRolePolicyDocument": _document(role.assume_role_policy),
        "MaxSessionDuration": role.max_session_duration,
    }
    if role.description:
        out["Description"] = role.description
    if tags and role.tags:
        out["Tags"] = _tags_out(role.tags)
    return out


def _policy(ctx: AwsContext, policy: PolicyRecord, *, detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "PolicyName": policy.name,
        "PolicyId": policy.id,
        "Arn": policy.arn(ctx.account_id),
        "Path": policy.path,
        "DefaultVersionId": policy.default_version_id,
        "AttachmentCount": policy.attachment_count,
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": True,
        "CreateDate": _when(policy.created_at),
        "UpdateDate": _when(policy.updated_at),
    }
    # IAM shows a policy's description and tags by GetPolicy, not in listings.
    if detail and policy.description:
        out["Description"] = policy.description
    if detail and policy.tags:
        out["Tags"] = _tags_out(policy.tags)
    return out


def _version(version: PolicyVersionRecord, *, document: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "VersionId": version.version_id,
        "IsDefaultVersion": version.is_default,
        "CreateDate": _when(version.created_at),
    }
    if document:
        out["Document"] = _document(version.document)
    return out


def _access_key(key: AccessKeyRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "AccessKeyId": key.access_key_id,
        "Status": key.status,
        "CreateDate": _when(key.created_at),
    }
    if key.user_name is not None:
        out["UserName"] = key.user_name
    return out


def _attached(policies: Sequence[AttachedPolicy]) -> list[dict[str, str]]:
    return [{"PolicyName": policy.name, "PolicyArn": policy.arn} for policy in policies]


def _iam_arn(ctx: AwsContext, kind: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{ctx.account_id}:{kind}{path}{name}"


# -- what users and roles share: tags, inline policies, attached policies ------------------------------------


@dataclass(frozen=True, slots=True)
class _Entity:
    """A kind of IAM entity. Users, roles and groups answer the same policy operations, whose names, actions and
    members differ only by the noun: PutUserPolicy and PutGroupPolicy, iam:PutUserPolicy and iam:PutGroupPolicy,
    UserName and GroupName."""

    owner: Owner
    noun: str

    def authorize(self, ctx: AwsContext, params: dict[str, Any], action: str, *, policy_arn: bool = False) -> str:
        """Authorize ``iam:<action>`` on the entity the request names and return its name; in the operations users
        and roles share, ``{}`` in ``action`` stands for the noun.
        Attaching and detaching (``policy_arn``) give the policy's ARN as the ``iam:PolicyARN`` condition key."""
        name = str(params[f"{self.noun}Name"])
        context: dict[str, object] | None = {"iam:PolicyARN": params["PolicyArn"]} if policy_arn else None
        ctx.authorize(f"iam:{action.format(self.noun)}", ctx.identity.principals.entity_arn(self.owner, name), context)
        return name

    def put_policy(self, ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self.authorize(ctx, params, "Put{}Policy")
        ctx.identity.permissions.put_inline_policy(self.owner, name, params["PolicyName"], params["PolicyDocument"])
        return {}

    def get_policy(self, ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self.authorize(ctx, params, "Get{}Policy")
        policy = ctx.identity.permissions.get_inline_policy(self.owner, name, params["PolicyName"])
        # The entity's name as stored (IAM names ignore case), not as the request spelt it.
        stored = ctx.identity.principals.stored_name(self.owner, name)
        return {
            f"{self.noun}Name": stored,
            "PolicyName": policy.name,
            "PolicyDocument": _document(policy.document),
        }

    def list_policies(self, ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self.authorize(ctx, params, "List{}Policies")
        page = ctx.identity.permissions.list_inline_policies(self.owner, name, **_page_request(params))
        return _paging(page, {"PolicyNames": list(page.items)})

    def delete_policy(self, ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self.authorize(ctx, params, "Delete{}Policy")
        ctx.identity.permissions.delete_inline_policy(self.owner, name, params["PolicyName"])
        return {}

    def attach_policy(self, ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self.authorize(ctx, params, "Attach{}Policy", policy_arn=True)
        ctx.identity.permissions.attach_policy(self.owner, name, params["PolicyArn"])
        return {}

    def detach_policy(self, ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self.authorize(ctx, params, "Detach{}Policy", policy_arn=True)
        ctx.identity.permissions.detach_policy(self.owner, name, params["PolicyArn"])
        return {}

    def list_attached_policies(self, ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self.authorize(ctx, params, "ListAttached{}Policies")
        page = ctx.identity.permissions.list_attached_policies(
            self.owner, name, path_prefix=params.get("PathPrefix", "/"), **_page_request(params)
        )
        return _paging(page, {"AttachedPolicies": _attached(page.items)})


@dataclass(frozen=True, slots=True)
class _TaggedEntity(_Entity):
    """Users and roles also answer the same tag operations (IAM does not tag groups)."""

    owner: Tagged

    def tag(self, ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self.authorize(ctx, params, "Tag{}")
        ctx.identity.principals.tag(self.owner, name, _tags_in(params))
        return {}

    def untag(self, ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self.authorize(ctx, params, "Untag{}")
        ctx.identity.principals.untag(self.owner, name, params.get("TagKeys") or [])
        return {}

    def list_tags(self, ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self.authorize(ctx, params, "List{}Tags")
        return {"Tags": _tags_out(ctx.identity.principals.entity(self.owner, name).tags), "IsTruncated": False}


_USER: Final = _TaggedEntity("user", "User")
_ROLE: Final = _TaggedEntity("role", "Role")
_GROUP: Final = _Entity("group", "Group")


# -- users ----------------------------------------------------------------------------------------------


def create_user(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name, path = params["UserName"], params.get("Path", "/")
    ctx.authorize("iam:CreateUser", _iam_arn(ctx, "user", path, name))
    _refuse_permissions_boundary(params)
    user = ctx.identity.users.create_user(name, path=path, tags=_tags_in(params))
    return {"User": _user(ctx, user)}


def get_user(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _own_user_name(ctx, params)
    ctx.authorize("iam:GetUser", _user_resource(ctx, name))
    if name is None:
        # The account root, as IAM shows it: no name and no path.
        return {
            "User": {
                "UserId": ctx.account_id,
                "Arn": ctx.identity.principals.root_arn,
                "CreateDate": _when(ctx.identity.principals.root_created_at()),
            }
        }
    return {"User": _user(ctx, ctx.identity.users.get_user(name))}


def list_users(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    prefix = params.get("PathPrefix", "/")
    ctx.authorize("iam:ListUsers", _iam_arn(ctx, "user", prefix, ""))
    page = ctx.identity.users.list_users(path_prefix=prefix, **_page_request(params))
    return _paging(page, {"Users": [_user(ctx, user, tags=False) for user in page.items]})


def update_user(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _USER.authorize(ctx, params, "UpdateUser")
    ctx.identity.users.update_user(name, new_name=params.get("NewUserName"), new_path=params.get("NewPath"))
    return {}


def delete_user(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _USER.authorize(ctx, params, "DeleteUser")
    ctx.identity.users.delete_user(name)
    return {}


# -- groups ---------------------------------------------------------------------------------------------


def create_group(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name, path = params["GroupName"], params.get("Path", "/")
    ctx.authorize("iam:CreateGroup", _iam_arn(ctx, "group", path, name))
    return {"Group": _group(ctx, ctx.identity.groups.create_group(name, path=path))}


def get_group(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _GROUP.authorize(ctx, params, "GetGroup")
    found = ctx.identity.groups.get_group(name, **_page_request(params))
    return _paging(
        found.users,
        {"Group": _group(ctx, found.group), "Users": [_user(ctx, user, tags=False) for user in found.users.items]},
    )


def list_groups(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    prefix = params.get("PathPrefix", "/")
    ctx.authorize("iam:ListGroups", _iam_arn(ctx, "group", prefix, ""))
    page = ctx.identity.groups.list_groups(path_prefix=prefix, **_page_request(params))
    return _paging(page, {"Groups": [_group(ctx, group) for group in page.items]})


def update_group(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _GROUP.authorize(ctx, params, "UpdateGroup")
    ctx.identity.groups.update_group(name, new_name=params.get("NewGroupName"), new_path=params.get("NewPath"))
    return {}


def delete_group(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _GROUP.authorize(ctx, params, "DeleteGroup")
    ctx.identity.groups.delete_group(name)
    return {}


def add_user_to_group(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _GROUP.authorize(ctx, params, "AddUserToGroup")
    ctx.identity.groups.add_user_to_group(name, params["UserName"])
    return {}


def remove_user_from_group(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _GROUP.authorize(ctx, params, "RemoveUserFromGroup")
    ctx.identity.groups.remove_user_from_group(name, params["UserName"])
    return {}


def list_groups_for_user(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _USER.authorize(ctx, params, "ListGroupsForUser")
    page = ctx.identity.groups.list_groups_for_user(name, **_page_request(params))
    return _paging(page, {"Groups": [_group(ctx, group) for group in page.items]})


# -- access keys ----------------------------------------------------------------------------------------


def create_access_key(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _own_user_name(ctx, params)
    ctx.authorize("iam:CreateAccessKey", _user_resource(ctx, name))
    key = ctx.identity.users.create_access_key(name)
    out: dict[str, Any] = {
        "AccessKeyId": key.access_key_id,
        "Status": key.status,
        "SecretAccessKey": key.secret_access_key,
        "CreateDate": _when(key.created_at),
    }
    if key.user_name is not None:
        out["UserName"] = key.user_name
    return {"AccessKey": out}


def list_access_keys(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _own_user_name(ctx, params)
    ctx.authorize("iam:ListAccessKeys", _user_resource(ctx, name))
    page = ctx.identity.users.list_access_keys(name, **_page_request(params))
    return _paging(page, {"AccessKeyMetadata": [_access_key(key) for key in page.items]})


def update_access_key(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _own_user_name(ctx, params)
    ctx.authorize("iam:UpdateAccessKey", _user_resource(ctx, name))
    ctx.identity.users.update_access_key(name, params["AccessKeyId"], params["Status"])
    return {}


def delete_access_key(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _own_user_name(ctx, params)
    ctx.authorize("iam:DeleteAccessKey", _user_resource(ctx, name))
    ctx.identity.users.delete_access_key(name, params["AccessKeyId"])
    return {}


# -- console passwords ----------------------------------------------------------------------------------


def _login_profile_user(ctx: AwsContext, params: dict[str, Any], action: str) -> str:
    """Authorize ``action`` on the user a login profile operation names (the caller when it names none)."""
    name = _own_user_name(ctx, params)
    ctx.authorize(action, _user_resource(ctx, name))
    if name is None:
        # The account root signs in with its own credentials, not an IAM login profile.
        raise ValidationError("Must specify userName when calling with root credentials")
    return name


def _login_profile(profile: LoginProfile) -> dict[str, Any]:
    return {
        "UserName": profile.user_name,
        "CreateDate": _when(profile.created_at),
        "PasswordResetRequired": profile.password_reset_required,
    }


def create_login_profile(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _login_profile_user(ctx, params, "iam:CreateLoginProfile")
    if params.get("Password") is None:
        raise ValidationError("Must specify password when creating a login profile")
    profile = ctx.identity.login_profiles.create_login_profile(
        name, params["Password"], reset_required=bool(params.get("PasswordResetRequired", False))
    )
    return {"LoginProfile": _login_profile(profile)}


def get_login_profile(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _login_profile_user(ctx, params, "iam:GetLoginProfile")
    return {"LoginProfile": _login_profile(ctx.identity.login_profiles.get_login_profile(name))}


def update_login_profile(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _USER.authorize(ctx, params, "UpdateLoginProfile")
    ctx.identity.login_profiles.update_login_profile(
        name, password=params.get("Password"), reset_required=params.get("PasswordResetRequired")
    )
    return {}


def delete_login_profile(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _login_profile_user(ctx, params, "iam:DeleteLoginProfile")
    ctx.identity.login_profiles.delete_login_profile(name)
    return {}


def change_password(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = ctx.caller.username if ctx.caller.kind is CallerKind.USER else None
    # AllowUsersToChangePassword in the account password policy lets every IAM user change its own password
    # without a policy granting iam:ChangePassword (IAM user guide, "Let IAM users change their own password").
    if name is None or not ctx.identity.login_profiles.users_may_change_password():
        ctx.authorize("iam:ChangePassword", _user_resource(ctx, name))
    ctx.identity.login_profiles.change_password(name, params["OldPassword"], params["NewPassword"])
    return {}


_PASSWORD_POLICY_MEMBERS: Final = {
    "MinimumPasswordLength": "minimum_password_length",
    "RequireSymbols": "require_symbols",
    "RequireNumbers": "require_numbers",
    "RequireUppercaseCharacters": "require_uppercase_characters",
    "RequireLowercaseCharacters": "require_lowercase_characters",
    "AllowUsersToChangePassword": "allow_users_to_change_password",
    "MaxPasswordAge": "max_password_age",
    "PasswordReusePrevention": "password_reuse_prevention",
    "HardExpiry": "hard_expiry",
}


def update_account_password_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("iam:UpdateAccountPasswordPolicy", "*")
    ctx.identity.login_profiles.update_account_password_policy(
        **{field: params.get(member) for member, field in _PASSWORD_POLICY_MEMBERS.items()}
    )
    return {}


def get_account_password_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("iam:GetAccountPasswordPolicy", "*")
    policy = ctx.identity.login_profiles.get_account_password_policy()
    out: dict[str, Any] = {member: getattr(policy, field) for member, field in _PASSWORD_POLICY_MEMBERS.items()}
    out["ExpirePasswords"] = policy.expire_passwords
    # IAM leaves the unset limits out of its answer.
    for member in ("MaxPasswordAge", "PasswordReusePrevention"):
        if not out[member]:
            del out[member]
    return {"PasswordPolicy": out}


def delete_account_password_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("iam:DeleteAccountPasswordPolicy", "*")
    ctx.identity.login_profiles.delete_account_password_policy()
    return {}


# -- the account alias ----------------------------------------------------------------------------------


def create_account_alias(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("iam:CreateAccountAlias", "*")
    ctx.identity.account_aliases.create_account_alias(params["AccountAlias"])
    return {}


def list_account_aliases(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("iam:ListAccountAliases", "*")
    page = ctx.identity.account_aliases.list_account_aliases(**_page_request(params))
    return _paging(page, {"AccountAliases": list(page.items)})


def delete_account_alias(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("iam:DeleteAccountAlias", "*")
    ctx.identity.account_aliases.delete_account_alias(params["AccountAlias"])
    return {}


# -- managed policies -----------------------------------------------------------------------------------


def create_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name, path = params["PolicyName"], params.get("Path", "/")
    ctx.authorize("iam:CreatePolicy", _iam_arn(ctx, "policy", path, name))
    policy = ctx.identity.policies.create_policy(
        name,
        params["PolicyDocument"],
        path=path,
        description=params.get("Description", ""),
        tags=_tags_in(params),
    )
    return {"Policy": _policy(ctx, policy)}


def get_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["PolicyArn"]
    ctx.authorize("iam:GetPolicy", arn)
    return {"Policy": _policy(ctx, ctx.identity.policies.get_policy(arn))}


def list_policies(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("iam:ListPolicies", "*")
    if params.get("PolicyUsageFilter") == "PermissionsBoundary":
        # No permissions boundaries here (see _refuse_permissions_boundary): no policy is used as one.
        return {"Policies": [], "IsTruncated": False}
    page = ctx.identity.policies.list_policies(
        scope=params.get("Scope", "All"),
        only_attached=bool(params.get("OnlyAttached", False)),
        path_prefix=params.get("PathPrefix", "/"),
        marker=params.get("Marker"),
        max_items=params.get("MaxItems"),
    )
    return _paging(page, {"Policies": [_policy(ctx, policy, detail=False) for policy in page.items]})


def delete_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["PolicyArn"]
    ctx.authorize("iam:DeletePolicy", arn)
    ctx.identity.policies.delete_policy(arn)
    return {}


def get_policy_version(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["PolicyArn"]
    ctx.authorize("iam:GetPolicyVersion", arn)
    return {"PolicyVersion": _version(ctx.identity.policies.get_policy_version(arn, params["VersionId"]))}


def list_policy_versions(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["PolicyArn"]
    ctx.authorize("iam:ListPolicyVersions", arn)
    page = ctx.identity.policies.list_policy_versions(arn, **_page_request(params))
    # IAM lists versions without their documents.
    return _paging(page, {"Versions": [_version(version, document=False) for version in page.items]})


def create_policy_version(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["PolicyArn"]
    ctx.authorize("iam:CreatePolicyVersion", arn)
    version = ctx.identity.policies.create_policy_version(
        arn, params["PolicyDocument"], set_as_default=bool(params.get("SetAsDefault", False))
    )
    return {"PolicyVersion": _version(version, document=False)}


def delete_policy_version(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["PolicyArn"]
    ctx.authorize("iam:DeletePolicyVersion", arn)
    ctx.identity.policies.delete_policy_version(arn, params["VersionId"])
    return {}


def set_default_policy_version(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["PolicyArn"]
    ctx.authorize("iam:SetDefaultPolicyVersion", arn)
    ctx.identity.policies.set_default_policy_version(arn, params["VersionId"])
    return {}


def list_entities_for_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["PolicyArn"]
    ctx.authorize("iam:ListEntitiesForPolicy", arn)
    entities = ctx.identity.policies.list_entities_for_policy(
        arn, entity_filter=params.get("EntityFilter"), path_prefix=params.get("PathPrefix", "/")
    )
    if params.get("PolicyUsageFilter") == "PermissionsBoundary":
        entities = PolicyEntities(users=(), roles=())  # no permissions boundaries here
    return {
        "PolicyGroups": [{"GroupName": group.name, "GroupId": group.id} for group in entities.groups],
        "PolicyUsers": [{"UserName": user.name, "UserId": user.id} for user in entities.users],
        "PolicyRoles": [{"RoleName": role.name, "RoleId": role.id} for role in entities.roles],
        "IsTruncated": False,
    }


# -- roles ----------------------------------------------------------------------------------------------


def create_role(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name, path = params["RoleName"], params.get("Path", "/")
    ctx.authorize("iam:CreateRole", _iam_arn(ctx, "role", path, name))
    _refuse_permissions_boundary(params)
    role = ctx.identity.roles.create_role(
        name,
        params["AssumeRolePolicyDocument"],
        path=path,
        description=params.get("Description", ""),
        max_session_duration=params.get("MaxSessionDuration", 3600),
        tags=_tags_in(params),
    )
    return {"Role": _role(ctx, role)}


def get_role(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _ROLE.authorize(ctx, params, "GetRole")
    return {"Role": _role(ctx, ctx.identity.roles.get_role(name))}


def list_roles(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    prefix = params.get("PathPrefix", "/")
    ctx.authorize("iam:ListRoles", _iam_arn(ctx, "role", prefix, ""))
    page = ctx.identity.roles.list_roles(path_prefix=prefix, **_page_request(params))
    return _paging(page, {"Roles": [_role(ctx, role, tags=False) for role in page.items]})


def update_role(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _ROLE.authorize(ctx, params, "UpdateRole")
    ctx.identity.roles.update_role(
        name, description=params.get("Description"), max_session_duration=params.get("MaxSessionDuration")
    )
    return {}


def update_assume_role_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _ROLE.authorize(ctx, params, "UpdateAssumeRolePolicy")
    ctx.identity.roles.update_assume_role_policy(name, params["PolicyDocument"])
    return {}


def delete_role(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _ROLE.authorize(ctx, params, "DeleteRole")
    ctx.identity.roles.delete_role(name)
    return {}


def list_instance_profiles_for_role(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _ROLE.authorize(ctx, params, "ListInstanceProfilesForRole")
    ctx.identity.roles.get_role(name)  # NoSuchEntity for a role that does not exist
    # Instance profiles hand a role to EC2 instances; ecrd has neither, so no role is in one. Terraform asks
    # before it deletes a role, to take the role out of its profiles first.
    return {"InstanceProfiles": [], "IsTruncated": False}


OPERATIONS: dict[str, Operation] = {
    "CreateUser": create_user,
    "GetUser": get_user,
    "ListUsers": list_users,
    "UpdateUser": update_user,
    "DeleteUser": delete_user,
    "TagUser": _USER.tag,
    "UntagUser": _USER.untag,
    "ListUserTags": _USER.list_tags,
    "CreateAccessKey": create_access_key,
    "ListAccessKeys": list_access_keys,
    "UpdateAccessKey": update_access_key,
    "DeleteAccessKey": delete_access_key,
    "CreateLoginProfile": create_login_profile,
    "GetLoginProfile": get_login_profile,
    "UpdateLoginProfile": update_login_profile,
    "DeleteLoginProfile": delete_login_profile,
    "ChangePassword": change_password,
    "UpdateAccountPasswordPolicy": update_account_password_policy,
    "GetAccountPasswordPolicy": get_account_password_policy,
    "DeleteAccountPasswordPolicy": delete_account_password_policy,
    "CreateAccountAlias": create_account_alias,
    "ListAccountAliases": list_account_aliases,
    "DeleteAccountAlias": delete_account_alias,
    "PutUserPolicy": _USER.put_policy,
    "GetUserPolicy": _USER.get_policy,
    "ListUserPolicies": _USER.list_policies,
    "DeleteUserPolicy": _USER.delete_policy,
    "CreateGroup": create_group,
    "GetGroup": get_group,
    "ListGroups": list_groups,
    "UpdateGroup": update_group,
    "DeleteGroup": delete_group,
    "AddUserToGroup": add_user_to_group,
    "RemoveUserFromGroup": remove_user_from_group,
    "ListGroupsForUser": list_groups_for_user,
    "PutGroupPolicy": _GROUP.put_policy,
    "GetGroupPolicy": _GROUP.get_policy,
    "ListGroupPolicies": _GROUP.list_policies,
    "DeleteGroupPolicy": _GROUP.delete_policy,
    "AttachGroupPolicy": _GROUP.attach_policy,
    "DetachGroupPolicy": _GROUP.detach_policy,
    "ListAttachedGroupPolicies": _GROUP.list_attached_policies,
    "CreatePolicy": create_policy,
    "GetPolicy": get_policy,
    "ListPolicies": list_policies,
    "DeletePolicy": delete_policy,
    "GetPolicyVersion": get_policy_version,
    "ListPolicyVersions": list_policy_versions,
    "CreatePolicyVersion": create_policy_version,
    "DeletePolicyVersion": delete_policy_version,
    "SetDefaultPolicyVersion": set_default_policy_version,
    "ListEntitiesForPolicy": list_entities_for_policy,
    "AttachUserPolicy": _USER.attach_policy,
    "DetachUserPolicy": _USER.detach_policy,
    "ListAttachedUserPolicies": _USER.list_attached_policies,
    "AttachRolePolicy": _ROLE.attach_policy,
    "DetachRolePolicy": _ROLE.detach_policy,
    "ListAttachedRolePolicies": _ROLE.list_attached_policies,
    "CreateRole": create_role,
    "GetRole": get_role,
    "ListRoles": list_roles,
    "UpdateRole": update_role,
    "UpdateAssumeRolePolicy": update_assume_role_policy,
    "DeleteRole": delete_role,
    "ListInstanceProfilesForRole": list_instance_profiles_for_role,
    "TagRole": _ROLE.tag,
    "UntagRole": _ROLE.untag,
    "ListRoleTags": _ROLE.list_tags,
    "PutRolePolicy": _ROLE.put_policy,
    "GetRolePolicy": _ROLE.get_policy,
    "ListRolePolicies": _ROLE.list_policies,
    "DeleteRolePolicy": _ROLE.delete_policy,
}
