"""Key policy documents and the KMS rule for deciding a request on a key.

Authorization follows KMS's rule that the key policy is the root of trust: a key policy statement that names the
caller allows by itself; IAM policies count only when the key policy allows the account (its root principal),
as the default key policy does ("Enable IAM User Permissions"); an explicit Deny anywhere wins.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from ecrd.errors import KmsLimitExceeded, KmsMalformedPolicyDocument, MalformedPolicyDocument
from ecrd.policy.document import PolicyDocument, parse_policy
from ecrd.policy.evaluation import AuthorizationRequest, Decision, evaluate

MAX_KEY_POLICY_BYTES: Final = 32768  # "Key policy document size: 32 KB"

# What is left of the key-policy question once the identity side is settled: see key_access_decision.
_ALLOW_EVERYTHING: Final = parse_policy(
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}', kind="identity"
)
_KEY_POLICY_ONLY: Final = "key-policy"
_NO_KEY_POLICY_ALLOW: Final = Decision(False, "no_resource_allow")


def _policy_text(document: dict[str, object]) -> str:
    # KMS returns key policies pretty-printed ("Version" : "2012-10-17", two-space indents).
    return json.dumps(document, indent=2, separators=(",", " : "))


def default_key_policy(account_id: str) -> str:
    """The policy KMS gives a key created without one: the account may use IAM policies to allow access."""
    return _policy_text(
        {
            "Version": "2012-10-17",
            "Id": "key-default-1",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )


@dataclass(frozen=True, slots=True)
class ManagedKey:
    """An AWS managed key: the service it serves, the name AWS gives that service in its policy, and its
    description."""

    service: str  # the service prefix, as in kms:ViaService ("ecr.<region>.amazonaws.com")
    display_name: str
    description: str

    @property
    def alias(self) -> str:
        return f"alias/aws/{self.service}"


MANAGED_KEYS: Final = (
    ManagedKey("ecr", "Amazon ECR", "Default key that protects my ECR data when no other key is defined"),
    ManagedKey(
        "secretsmanager",
        "AWS Secrets Manager",
        "Default key that protects my Secrets Manager data when no other key is defined",
    ),
)
MANAGED_ECR_KEY: Final = MANAGED_KEYS[0]
MANAGED_SECRETS_MANAGER_KEY: Final = MANAGED_KEYS[1]


def managed_key_policy(managed: ManagedKey, account_id: str, region: str) -> str:
    """The policy of an AWS managed key (``aws/ecr``, ``aws/secretsmanager``), as AWS writes the policies of AWS
    managed keys: every principal of the account may use it through its service; the account may read its
    metadata directly."""
    return _policy_text(
        {
            "Version": "2012-10-17",
            "Id": f"auto-{managed.service}-1",
            "Statement": [
                {
                    "Sid": f"Allow access through {managed.display_name} for all principals in the account that "
                    f"are authorized to use {managed.display_name}",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:CreateGrant",
                        "kms:DescribeKey",
                        "kms:RetireGrant",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:CallerAccount": account_id,
                            "kms:ViaService": f"{managed.service}.{region}.amazonaws.com",
                        }
                    },
                },
                {
                    "Sid": "Allow direct access to key metadata to the account",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                    "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                    "Resource": "*",
                },
            ],
        }
    )


def managed_ecr_key_policy(account_id: str, region: str) -> str:
    return managed_key_policy(MANAGED_ECR_KEY, account_id, region)


def check_key_policy(policy: str) -> PolicyDocument:
    """Validate a key policy: a resource policy (every statement names its principals) of at most 32 KB."""
    if len(policy.encode()) > MAX_KEY_POLICY_BYTES:
        raise KmsLimitExceeded(f"The key policy exceeds the maximum size of {MAX_KEY_POLICY_BYTES} bytes.")
    try:
        return parse_policy(policy, kind="resource")
    except MalformedPolicyDocument as exc:
        raise KmsMalformedPolicyDocument(exc.message) from None


def key_access_decision(
    request: AuthorizationRequest,
    identity_policies: Sequence[PolicyDocument],
    key_policy: PolicyDocument,
    *,
    is_account_root: bool = False,
) -> Decision:
    """Decide a request on a KMS key.

    KMS: "Unless the key policy explicitly allows it, you cannot use IAM policies to allow access to a KMS key."
    So on top of IAM's evaluation (an explicit Deny wins; a key policy statement naming the caller allows by
    itself; one naming only the account delegates to IAM policies), the key policy must allow the principal —
    itself or through its account — or nothing does, not even the account root.
    """
    decision = evaluate(request, identity_policies, key_policy, is_account_root=is_account_root)
    if not decision.allowed:
        return decision
    # Asked as if across accounts with an identity side that allows anything, evaluate() answers exactly the
    # remaining question: does the key policy allow this principal, directly or through its account?
    across = AuthorizationRequest(
        request.principal, request.action, request.resource, _KEY_POLICY_ONLY, request.context
    )
    if evaluate(across, [_ALLOW_EVERYTHING], key_policy).allowed:
        return decision
    return _NO_KEY_POLICY_ALLOW


def encryption_context_keys(context: Mapping[str, str]) -> dict[str, object]:
    """The condition keys KMS derives from an encryption context (kms:EncryptionContext:<key>, …Keys)."""
    keys: dict[str, object] = {f"kms:EncryptionContext:{k}": v for k, v in context.items()}
    keys["kms:EncryptionContextKeys"] = list(context)
    return keys
