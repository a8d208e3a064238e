"""Creation templates, pull-through cache rules, signing profiles and configuration, replication configuration and
backfills belong to one registry (an account in a region), on SQLite and PostgreSQL: services of two accounts,
and of two regions of one account, built over one store, each see and change their own only. The signing root
and the replication peers are the deployment's. Replication to another account or region of this deployment
needs no peer, and fails (for now) saying why."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import insert, select

from ecrd.domain.creation_templates import CREATE_ON_PUSH, PULL_THROUGH_CACHE, ROOT, CreationTemplate
from ecrd.domain.pull_through import PullThroughRule
from ecrd.domain.registries import DEPLOYMENT, RegistryId
from ecrd.domain.replication import FAILED, Destination, ReplicationConfiguration, ReplicationRule
from ecrd.domain.signing import SigningConfiguration
from ecrd.errors import (
    InvalidParameter,
    PullThroughCacheRuleNotFound,
    ReplicationBackfillNotFound,
    SigningConfigurationNotFound,
    TemplateNotFound,
)
from ecrd.metadata import pull_through as pull_through_queries
from ecrd.metadata import replication as replication_queries
from ecrd.metadata import repositories as repo_queries
from ecrd.metadata.jobs_tables import jobs
from ecrd.metadata.store import MetadataStore
from ecrd.metadata.tables import accounts, registry_settings
from ecrd.services.creation_templates import CreationTemplateService
from ecrd.services.pull_through_cache import PullThroughCacheService
from ecrd.services.replication import (
    LOCAL_DESTINATION_UNSUPPORTED,
    REPLICATE_JOB,
    ReplicationService,
    registry_of_replication_job,
)
from ecrd.services.secrets import SecretBox
from ecrd.services.signing import SIGNING_AUTHORITY_KEY, SigningService, registry_of_signing_job
from tests.support.databases import database_url

A = RegistryId("111111111111", "us-east-1")
A_WEST = RegistryId("111111111111", "eu-west-1")
B = RegistryId("222222222222", "us-east-1")
ELSEWHERE = Destination("eu-west-1", "333333333333")  # an account of no deployment here
# Collaborators the operations under test never reach.
UNUSED: Any = None


@pytest.fixture
def store(backend: str, tmp_path: Any) -> Iterator[MetadataStore]:
    with database_url(backend, tmp_path) as url:
        built = MetadataStore(url)
        try:
            with built.write() as conn:
                for registry in (A, B):
                    conn.execute(insert(accounts).values(account_id=registry.account_id, created_at=time.time()))
            yield built
        finally:
            built.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(os.urandom(32))


# -- creation templates -----------------------------------------------------------------------------------------


def _templates(store: MetadataStore, registry: RegistryId) -> CreationTemplateService:
    return CreationTemplateService(
        store, UNUSED, UNUSED, UNUSED, UNUSED, account_id=registry.account_id, region=registry.region
    )


def test_templates_including_root_are_each_registrys_own(store: MetadataStore) -> None:
    # given a ROOT template and a team/ template in account A's us-east-1
    a, a_west, b = (_templates(store, registry) for registry in (A, A_WEST, B))
    a.create_template(CreationTemplate(prefix=ROOT, applied_for=(CREATE_ON_PUSH,), description="a root"))
    a.create_template(CreationTemplate(prefix="team", applied_for=(PULL_THROUGH_CACHE,), description="a team"))

    # then neither another account nor another region of A lists, reads or applies them
    for other in (a_west, b):
        assert other.describe_templates(None) == []
        assert other.describe_templates(["team", ROOT]) == []
        with pytest.raises(TemplateNotFound, match=f"registry with id '{other.account_id}'"):
            other.get_template("team")
        assert other.template_for("team/app", PULL_THROUGH_CACHE) is None
        assert other.template_for("anything", CREATE_ON_PUSH) is None
        with pytest.raises(TemplateNotFound):
            other.update_template("team", lambda current: current)
        with pytest.raises(TemplateNotFound):
            other.delete_template(ROOT)
    assert a.template_for("team/app", PULL_THROUGH_CACHE) is not None
    assert a.template_for("anything", CREATE_ON_PUSH) is not None

    # when B makes templates of the same prefixes, and installs create-on-push's ROOT
    b.create_template(CreationTemplate(prefix="team", applied_for=(CREATE_ON_PUSH,), description="b team"))
    b.install_create_on_push_root()
    b.delete_template("team")

    # then A's stay as they were
    assert [(t.prefix, t.description) for t in a.describe_templates(None)] == [(ROOT, "a root"), ("team", "a team")]
    assert [t.prefix for t in b.describe_templates(None)] == [ROOT]
    assert a.get_template(ROOT).applied_for == (CREATE_ON_PUSH,)
    assert a_west.describe_templates(None) == []


def test_a_deleted_principal_is_forgotten_in_every_registrys_templates(store: MetadataStore) -> None:
    arn = "arn:aws:iam::111111111111:user/alice"
    policy = f'{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{arn}"}}}}]}}'
    for registry in (A, B):
        _templates(store, registry).create_template(
            CreationTemplate(prefix="team", applied_for=(CREATE_ON_PUSH,), repository_policy=policy)
        )

    _templates(store, A).forget_principal(arn, "AIDAALICE")

    for registry in (A, B):
        stored = _templates(store, registry).get_template("team").repository_policy
        assert stored is not None and arn not in stored and "AIDAALICE" in stored


# -- pull-through cache rules -----------------------------------------------------------------------------------


def _pull_through(store: MetadataStore, registry: RegistryId) -> PullThroughCacheService:
    return PullThroughCacheService(
        store,
        UNUSED,
        UNUSED,
        UNUSED,
        _templates(store, registry),
        UNUSED,
        UNUSED,
        account_id=registry.account_id,
        region=registry.region,
        check_interval_seconds=3600.0,
    )


def test_pull_through_rules_are_each_registrys_own(store: MetadataStore) -> None:
    # given a rule hub/ → Quay in A
    a, a_west, b = (_pull_through(store, registry) for registry in (A, A_WEST, B))
    a.create_rule(PullThroughRule("hub", "quay.io"))
    assert a.rule_for("hub/library/alpine") is not None

    # then another account or region neither lists, reads nor pulls through it
    for other in (a_west, b):
        assert other.describe_rules(None) == []
        with pytest.raises(PullThroughCacheRuleNotFound, match=f"registry with id '{other.account_id}'"):
            other.describe_rules(["hub"])
        with pytest.raises(PullThroughCacheRuleNotFound):
            other.update_rule("hub", lambda current: current)
        with pytest.raises(PullThroughCacheRuleNotFound):
            other.delete_rule("hub")
        assert other.rule_for("hub/library/alpine") is None

    # when B has a rule of the same prefix to another upstream, then deletes it
    b.create_rule(PullThroughRule("hub", "public.ecr.aws"))
    assert b.rule_for("hub/owner/app") == b.describe_rules(["hub"])[0]
    assert b.describe_rules(["hub"])[0].upstream_registry_url == "public.ecr.aws"
    b.delete_rule("hub")

    # then A's rule is still there, unchanged
    [rule] = a.describe_rules(None)
    assert rule.upstream_registry_url == "quay.io"


def test_fsck_counts_a_repository_cached_only_by_its_own_registrys_rules(store: MetadataStore) -> None:
    _pull_through(store, A).create_rule(PullThroughRule("hub", "quay.io"))
    with store.write() as conn:
        ids = {registry: _repository(conn, registry, "hub/library/alpine").id for registry in (A, A_WEST, B)}

    with store.read() as conn:
        assert pull_through_queries.cached_repository_ids(conn) == {ids[A]}


# -- signing --------------------------------------------------------------------------------------------------


class _Keys:
    """KMS signing keys of one registry, as much of them as making a profile asks for."""

    def __init__(self, registry: RegistryId) -> None:
        self.registry = registry
        self.made: dict[str, ec.EllipticCurvePrivateKey] = {}

    def create_key(self, caller_arn: str, **_: object) -> SimpleNamespace:
        arn = f"arn:aws:kms:{self.registry.region}:{self.registry.account_id}:key/{uuid.uuid4()}"
        self.made[arn] = ec.generate_private_key(ec.SECP256R1())
        return SimpleNamespace(arn=arn)

    def get_public_key(self, arn: str) -> tuple[None, bytes]:
        public = self.made[arn].public_key()
        return None, public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _signing(store: MetadataStore, registry: RegistryId, box: SecretBox) -> SigningService:
    return SigningService(
        store,
        UNUSED,
        UNUSED,
        box,
        cast(Any, _Keys(registry)),
        account_id=registry.account_id,
        region=registry.region,
    )


def _configuration(profile_arn: str) -> SigningConfiguration:
    return SigningConfiguration.from_json(
        {
            "rules": [
                {
                    "signingProfileArn": profile_arn,
                    "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD_MATCH"}],
                }
            ]
        }
    )


def test_signing_profiles_and_configuration_are_each_registrys_own(store: MetadataStore, box: SecretBox) -> None:
    # given a profile named release in A, and in B
    a, a_west, b = (_signing(store, registry, box) for registry in (A, A_WEST, B))
    a_profile = a.create_signing_profile("release")
    b_profile = b.create_signing_profile("release")

    # then each has its own, with its registry's ARN, listed by it alone
    assert a_profile.arn == "arn:aws:signer:us-east-1:111111111111:/signing-profiles/release"
    assert b_profile.arn == "arn:aws:signer:us-east-1:222222222222:/signing-profiles/release"
    assert [p.arn for p in a.list_signing_profiles()] == [a_profile.arn]
    assert [p.arn for p in b.list_signing_profiles()] == [b_profile.arn]
    assert a_west.list_signing_profiles() == []

    # and a configuration may name only its own registry's profiles
    for other in (a_west, b):
        with pytest.raises(InvalidParameter, match="does not exist in this registry"):
            other.put_signing_configuration(_configuration(a_profile.arn))
    a.put_signing_configuration(_configuration(a_profile.arn))
    for other in (a_west, b):
        with pytest.raises(SigningConfigurationNotFound, match=f"registry with id '{other.account_id}'"):
            other.get_signing_configuration()
        with pytest.raises(SigningConfigurationNotFound):
            other.delete_signing_configuration()
    b.put_signing_configuration(_configuration(b_profile.arn))
    b.delete_signing_configuration()
    assert a.get_signing_configuration() == _configuration(a_profile.arn)


def test_the_signing_root_is_one_for_the_whole_deployment(store: MetadataStore, box: SecretBox) -> None:
    a, b = _signing(store, A, box), _signing(store, B, box)
    a_profile, b_profile = a.create_signing_profile("release"), b.create_signing_profile("release")

    # each profile's certificate names its registry: a trust policy's x509.subject tells A's release from B's
    subjects = {
        x509.load_pem_x509_certificate(p.certificate.encode()).subject.rfc4514_string() for p in (a_profile, b_profile)
    }
    assert subjects == {"CN=release,O=ecrd 111111111111 us-east-1", "CN=release,O=ecrd 222222222222 us-east-1"}

    assert a.trust_root() == b.trust_root() == _signing(store, A_WEST, box).trust_root()
    with store.read() as conn:
        rows = conn.execute(
            select(registry_settings.c.account_id, registry_settings.c.region).where(
                registry_settings.c.key == SIGNING_AUTHORITY_KEY
            )
        ).all()
    assert [(row.account_id, row.region) for row in rows] == [(DEPLOYMENT.account_id, DEPLOYMENT.region)]


def test_a_signing_job_names_its_repositorys_registry(store: MetadataStore) -> None:
    with store.write() as conn:
        repository = _repository(conn, A_WEST, "team/app")
        assert registry_of_signing_job(conn, {"repository_id": repository.id, "digest": "d", "profile": "p"}) == A_WEST
        assert registry_of_signing_job(conn, {"repository_id": repository.id + 1000, "digest": "d"}) is None


# -- replication ----------------------------------------------------------------------------------------------


def _replication(store: MetadataStore, registry: RegistryId, box: SecretBox, **keywords: Any) -> ReplicationService:
    return ReplicationService(
        store, UNUSED, box, UNUSED, account_id=registry.account_id, region=registry.region, **keywords
    )


def _to(*destinations: RegistryId | Destination) -> ReplicationConfiguration:
    return ReplicationConfiguration(
        (
            ReplicationRule(
                tuple(d if isinstance(d, Destination) else Destination(d.region, d.account_id) for d in destinations)
            ),
        )
    )


def test_a_registry_replicates_to_another_account_or_region_of_the_deployment_without_a_peer(
    store: MetadataStore, box: SecretBox
) -> None:
    a = _replication(store, A, box)

    # a registry replicating to itself is refused, as ECR refuses it
    with pytest.raises(InvalidParameter, match=r"'Replication destination cannot be the same as the source registry'$"):
        a.put_configuration(_to(A_WEST, A))
    # an account no deployment here serves needs a peer
    with pytest.raises(InvalidParameter, match="replication-peer add"):
        a.put_configuration(_to(ELSEWHERE))

    # another region of the account and another account of the deployment need none
    a.put_configuration(_to(A_WEST, B))
    assert a.configuration() == _to(A_WEST, B)

    # and a peer for an account of this deployment is refused: it would never be asked
    with pytest.raises(InvalidParameter, match="served by this deployment"):
        a.put_peer(Destination("eu-west-1", B.account_id), "https://peer.example", "AKIAPEER", "secret")
    a.put_peer(ELSEWHERE, "https://peer.example", "AKIAPEER", "secret")
    a.put_configuration(_to(ELSEWHERE))


def test_replication_configurations_are_each_registrys_own(store: MetadataStore, box: SecretBox) -> None:
    a, a_west, b = (_replication(store, registry, box) for registry in (A, A_WEST, B))
    a.put_configuration(_to(A_WEST))

    assert a_west.configuration() == ReplicationConfiguration()
    assert b.configuration() == ReplicationConfiguration()
    b.put_configuration(_to(A))
    assert a.configuration() == _to(A_WEST)
    assert b.configuration() == _to(A)


def test_replication_to_a_local_destination_fails_saying_why_until_it_is_served(
    store: MetadataStore, box: SecretBox
) -> None:
    # given an image of A whose replication to B is under way
    with store.write() as conn:
        repository = _repository(conn, A, "team/app")
        replication_queries.start(conn, repository.id, "sha256:" + "a" * 64, Destination(B.region, B.account_id), 1.0)
    payload = {
        "repository_id": repository.id,
        "digest": "sha256:" + "a" * 64,
        "tag": None,
        "region": B.region,
        "registry_id": B.account_id,
    }
    with store.read() as conn:
        assert registry_of_replication_job(conn, REPLICATE_JOB, payload) == A
        queued = _queued(conn)

    # when the job runs
    _replication(store, A, box).run_job(payload)

    # then the replication is FAILED at once, with its reason, and not tried again
    with store.read() as conn:
        [state] = replication_queries.states(conn, repository.id, payload["digest"])
        assert _queued(conn) == queued
    assert (state.status, state.failure_code) == (FAILED, LOCAL_DESTINATION_UNSUPPORTED)

    # and a local replicator given to the service is what replicates there
    copied: list[tuple[str, Destination]] = []

    def replicate_locally(repository: Any, digest: str, tag: str | None, destination: Destination) -> None:
        copied.append((digest, destination))

    _replication(store, A, box, replicate_locally=replicate_locally).run_job(payload)
    assert copied == [(payload["digest"], Destination(B.region, B.account_id))]
    with store.read() as conn:
        [state] = replication_queries.states(conn, repository.id, payload["digest"])
    assert (state.status, state.failure_code) == ("COMPLETE", None)


def test_replication_backfills_are_each_registrys_own(store: MetadataStore, box: SecretBox) -> None:
    # given a backfill of A's images to eu-west-1
    a, a_west, b = (_replication(store, registry, box) for registry in (A, A_WEST, B))
    a.put_configuration(_to(A_WEST))
    started = a.start_backfill(Destination(A_WEST.region, A_WEST.account_id))
    with store.read() as conn:
        assert replication_queries.backfill_source(conn, started.id) == A
        assert registry_of_replication_job(conn, "replication_backfill_prepare", {"id": started.id}) == A

    # then another account or region neither lists, reads nor stops it
    for other in (a_west, b):
        assert other.backfills(after=None, limit=10) == []
        with pytest.raises(ReplicationBackfillNotFound):
            other.backfill(started.id)
        with pytest.raises(ReplicationBackfillNotFound):
            other.stop_backfill(started.id)
        with pytest.raises(ReplicationBackfillNotFound):
            other.backfill_results(started.id, status=None, after=None, limit=10)

    # and B's own backfill to the same region is not held back by A's in progress
    b.put_configuration(_to(A_WEST))
    b_started = b.start_backfill(Destination(A_WEST.region, A_WEST.account_id))
    assert [x.id for x in b.backfills(after=None, limit=10)] == [b_started.id]
    assert [x.id for x in a.backfills(after=None, limit=10)] == [started.id]
    assert a.stop_backfill(started.id).status == "STOPPING"
    assert b.backfill(b_started.id)[0].status == "PREPARING"


# -- helpers ----------------------------------------------------------------------------------------------------


def _repository(conn: Any, registry: RegistryId, name: str) -> Any:
    return repo_queries.insert_repository(
        conn,
        registry,
        name=name,
        created_at=1.0,
        image_tag_mutability="MUTABLE",
        mutability_exclusions=(),
        scan_on_push=False,
        encryption_type="AES256",
        kms_key=None,
        manifest_key=os.urandom(32),
    )


def _queued(conn: Any) -> int:
    return len(conn.execute(select(jobs.c.id)).all())
