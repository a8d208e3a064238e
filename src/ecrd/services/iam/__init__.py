"""Identity (IAM and STS), one service per concern, built together by ``identity_services``.

IAM is global per account: the services built for an account read and write that account's users, groups,
roles, policies, keys and password policy only (the lead builds one set per registry, all over one metadata
store). Two things reach across accounts, as in AWS: authenticating an access key (of any account, answering as
its own) and AssumeRole of a role in another account this deployment serves.

- ``principals``: the ARN of the root, a user or a role, whether an ARN names one that exists, and the tags
  users and roles alike carry;
- ``users``: users and their long-term access keys;
- ``login_profiles``: users' console passwords and the account password policy;
- ``groups``: groups and their members;
- ``roles``: roles and their trust policies;
- ``policies``: managed policies and their versions;
- ``permissions``: inline policies and attached managed policies of users, roles and groups;
- ``sessions``: STS (AssumeRole, GetSessionToken, GetCallerIdentity);
- ``authentication``: who an access key is (the Caller, with its kind) and the root's key;
- ``documents``: the identity policies in force for a caller, as authorization asks for them;
- ``aliases``: the account alias (kept on the deployment's ``accounts`` row of the account).

Names, limits, validation and error texts follow IAM's documentation ("IAM and AWS STS quotas", the API
reference) so that the AWS CLI, boto3 and Terraform see what they would see from AWS. Every write that checks
before it writes runs in one transaction and takes a row lock (or, for the account root, the identity advisory
lock), so two processes cannot both pass a check that only one of them may pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ecrd.metadata.generations import Generations
from ecrd.metadata.store import MetadataStore
from ecrd.services.iam.aliases import AccountAliasService
from ecrd.services.iam.authentication import Authenticator
from ecrd.services.iam.documents import PolicyDocuments
from ecrd.services.iam.entities import PrincipalDeleted
from ecrd.services.iam.groups import GroupService
from ecrd.services.iam.passwords import LoginProfileService
from ecrd.services.iam.permissions import PermissionService
from ecrd.services.iam.policies import PolicyService
from ecrd.services.iam.principals import Principals
from ecrd.services.iam.roles import RoleService
from ecrd.services.iam.sessions import SessionService
from ecrd.services.iam.users import UserService
from ecrd.services.secrets import SecretBox


@dataclass(frozen=True, slots=True)
class IdentityServices:
    """The identity services of one account; each caller takes the one it needs."""

    principals: Principals
    users: UserService
    login_profiles: LoginProfileService
    groups: GroupService
    roles: RoleService
    policies: PolicyService
    permissions: PermissionService
    sessions: SessionService
    authentication: Authenticator
    documents: PolicyDocuments
    account_aliases: AccountAliasService
    # Called with (ARN, unique id) after a user or role is deleted (shared by ``users`` and ``roles``).
    on_principal_deleted: list[PrincipalDeleted]


def identity_services(
    store: MetadataStore,
    *,
    account_id: str,
    secret_box: SecretBox,
    clock: Callable[[], float] = time.time,
    policy_cache_size: int = 1024,
    generations: Generations | None = None,
) -> IdentityServices:
    deleted: list[PrincipalDeleted] = []
    documents = PolicyDocuments(
        store, account_id=account_id, policy_cache_size=policy_cache_size, generations=generations
    )
    return IdentityServices(
        principals=Principals(store, account_id=account_id, clock=clock),
        users=UserService(
            store, account_id=account_id, secret_box=secret_box, on_principal_deleted=deleted, clock=clock
        ),
        login_profiles=LoginProfileService(store, account_id=account_id, clock=clock),
        groups=GroupService(store, account_id=account_id, clock=clock),
        roles=RoleService(store, account_id=account_id, on_principal_deleted=deleted, clock=clock),
        policies=PolicyService(store, account_id=account_id, clock=clock),
        permissions=PermissionService(store, account_id=account_id, clock=clock),
        sessions=SessionService(store, documents, account_id=account_id, secret_box=secret_box, clock=clock),
        authentication=Authenticator(
            store, account_id=account_id, secret_box=secret_box, clock=clock, generations=generations
        ),
        documents=documents,
        account_aliases=AccountAliasService(store, account_id=account_id, clock=clock),
        on_principal_deleted=deleted,
    )
