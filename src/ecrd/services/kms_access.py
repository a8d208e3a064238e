"""Who may do what with a KMS key: each call decided by the key's policy together with the caller's IAM
policies (``kms_policies.key_access_decision``), or by IAM policies alone for what no key policy governs.

A caller may belong to another account than the key: the request is then decided across accounts, as KMS
decides cross-account use — the key policy must allow the caller or its account, and the caller's own IAM
policies must allow the action on the key."""

from __future__ import annotations

from collections.abc import Mapping

from ecrd.errors import AccessDenied
from ecrd.metadata import kms as q
from ecrd.policy.evaluation import evaluate
from ecrd.services.access import Caller
from ecrd.services.kms_keys import KeyRecord, KeyRing
from ecrd.services.kms_policies import encryption_context_keys, key_access_decision


class KeyAccess(KeyRing):
    """The authorization of every call on the keys of the ring."""

    def authorize(
        self,
        caller: Caller,
        action: str,
        key: str,
        *,
        via_service: str | None = None,
        encryption_context: Mapping[str, str] | None = None,
        context: Mapping[str, object] | None = None,
    ) -> KeyRecord:
        """Return the key ``key`` names when ``caller`` may perform ``action`` (``kms:Encrypt``…) on it under
        its key policy and the caller's IAM policies; raise AccessDenied otherwise.

        ``via_service`` ("ecr") says the call comes through that service for the caller (kms:ViaService);
        ``encryption_context`` gives the kms:EncryptionContext condition keys; ``context`` adds any others
        (aws:RequestTag/…, aws:TagKeys, kms:BypassPolicyLockoutSafetyCheck…).
        """
        now = self.clock()
        with self.store.read() as conn:
            row = self._find(conn, key, now)
            tags = q.get_tags(conn, row.id)
        record = self._record(row)
        extra: dict[str, object] = {
            "kms:CallerAccount": caller.account_id,
            "kms:KeyOrigin": "AWS_KMS",
            "kms:KeySpec": record.key_spec,
            "kms:KeyUsage": record.key_usage,
            **{f"aws:ResourceTag/{k}": v for k, v in tags.items()},
        }
        reference = self._reference(key)
        if reference.kind == "alias":
            extra["kms:RequestAlias"] = reference.name
        if via_service is not None:
            extra["kms:ViaService"] = f"{via_service}.{self.region}.amazonaws.com"
        if encryption_context is not None:
            extra.update(encryption_context_keys(encryption_context))
        if context:
            extra.update(context)
        request = self._request(caller, action, record.arn, extra, resource_account=record.account_id)
        decision = key_access_decision(
            request,
            self._identity_policies(caller),
            self._policies.parse(record.policy),
            is_account_root=caller.is_root,
        )
        if not decision.allowed:
            raise AccessDenied(decision.denial_message(request))
        return record

    def authorize_account(
        self, caller: Caller, action: str, resource: str = "*", *, context: Mapping[str, object] | None = None
    ) -> None:
        """Authorize an action no key policy governs — CreateKey, ListKeys, ListAliases, and the alias side of
        the alias operations — by the caller's IAM policies alone."""
        extra: dict[str, object] = {"kms:CallerAccount": caller.account_id, **(context or {})}
        request = self._request(caller, action, resource, extra)
        decision = evaluate(request, self._identity_policies(caller), None, is_account_root=caller.is_root)
        if not decision.allowed:
            raise AccessDenied(decision.denial_message(request))
