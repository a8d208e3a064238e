"""The identity policies in force for a caller, read once per access generation and parsed once per process.

This is what every authorization decision (ECR, IAM, STS, KMS) asks of identity: the inline and attached
managed policies of the caller's user, or of the role its session belongs to.
"""

from __future__ import annotations

from ecrd.domain.caches import BoundedCache
from ecrd.errors import MalformedPolicyDocument
from ecrd.metadata import iam as q
from ecrd.metadata.generations import GenerationCache, Generations
from ecrd.metadata.iam import Owner
from ecrd.metadata.store import MetadataStore
from ecrd.policy.document import PolicyDocument, PolicyKind, parse_policy
from ecrd.policy.managed import managed_policy
from ecrd.services.access import Caller, CallerKind


def identity_document(text: str) -> PolicyDocument:
    """An identity policy as IAM accepts one (PutUserPolicy, CreatePolicy…): blank text is a syntax error."""
    if not text.strip():
        raise MalformedPolicyDocument("Syntax errors in policy.")
    return parse_policy(text, kind="identity")


class PolicyDocuments:
    def __init__(
        self,
        store: MetadataStore,
        *,
        account_id: str,
        policy_cache_size: int = 1024,
        generations: Generations | None = None,
    ) -> None:
        self.store = store
        self.account_id = account_id
        # Parsed stored policies by (kind, text): the same few documents are read on every request.
        self.parsed: BoundedCache[tuple[PolicyKind, str], PolicyDocument] = BoundedCache(policy_cache_size)
        # Read on every request, changed rarely: cached per process while the access generation stands.
        self._owner_documents: GenerationCache[tuple[Owner, str], tuple[PolicyDocument, ...]] = GenerationCache(
            generations
        )

    def identity_policies(self, caller: Caller) -> list[PolicyDocument]:
        """The inline and attached managed policies of the caller's user, or of the role of its session."""
        # Whatever account the caller is in: a caller of another account asking for a resource of this one (a
        # cross-account AssumeRole) brings its own identity policies, and users' and roles' ids are unique in the
        # whole deployment.
        owner: Owner
        if caller.kind is CallerKind.ASSUMED_ROLE:
            # An assumed-role caller's user id is "<role id>:<session name>".
            owner, owner_id = "role", caller.user_id.partition(":")[0]
        elif caller.kind is CallerKind.USER:
            owner, owner_id = "user", caller.user_id
        else:
            return []  # the account root has no identity policies: it may do everything in its account
        return list(self._owner_documents.get((owner, owner_id), lambda: self._read_documents(owner, owner_id)))

    def _read_documents(self, owner: Owner, owner_id: str) -> tuple[PolicyDocument, ...]:
        with self.store.read() as conn:
            rows = q.identity_documents(conn, owner, owner_id)
        documents: list[PolicyDocument] = []
        for ref, text in rows:
            if text is not None:
                documents.append(self.parse(text, "identity"))
            elif ref is not None:
                aws = managed_policy(ref)
                if aws is not None:
                    documents.append(aws.document)
        return tuple(documents)

    def parse(self, text: str, kind: PolicyKind) -> PolicyDocument:
        """Parse a stored policy once per process (a miss only costs one parse)."""
        return self.parsed.get_or_load((kind, text), lambda: parse_policy(text, kind=kind))
