"""A registry's replication configuration, as ECR defines it: rules, each with destinations (a region and a
registry id) and optional ``PREFIX_MATCH`` repository filters; which destinations a repository's pushes go to.

ECR's user guide ("Private image replication"): a repository matches a rule with no filter, or one of whose
filters is a prefix of its name; a repository matching several rules replicates to the union of their
destinations, each once. The model bounds the rules (25) and the destinations of a rule (100); the guide and the
console add that a configuration names at most 25 destinations in all and never the source registry itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from ecrd.errors import InvalidParameter

MAX_DESTINATIONS: Final = 25
PREFIX_MATCH: Final = "PREFIX_MATCH"

# The statuses of one image's replication to one destination (the model's ReplicationStatus).
IN_PROGRESS: Final = "IN_PROGRESS"
COMPLETE: Final = "COMPLETE"
FAILED: Final = "FAILED"

# Failure codes ecrd reports (the model leaves ReplicationError an open string and ECR documents no values).
DESTINATION_UNREACHABLE: Final = "DESTINATION_UNREACHABLE"
DESTINATION_ACCESS_DENIED: Final = "DESTINATION_ACCESS_DENIED"
DESTINATION_REFUSED_IMAGE: Final = "DESTINATION_REFUSED_IMAGE"
DESTINATION_NOT_CONFIGURED: Final = "DESTINATION_NOT_CONFIGURED"


@dataclass(frozen=True, slots=True, order=True)
class Destination:
    region: str
    registry_id: str

    def json(self) -> dict[str, str]:
        return {"region": self.region, "registryId": self.registry_id}


@dataclass(frozen=True, slots=True)
class ReplicationRule:
    destinations: tuple[Destination, ...]
    prefixes: tuple[str, ...] = ()
    delete_replication: bool | None = None

    def covers(self, repository_name: str) -> bool:
        return not self.prefixes or any(repository_name.startswith(prefix) for prefix in self.prefixes)


@dataclass(frozen=True, slots=True)
class ReplicationConfiguration:
    rules: tuple[ReplicationRule, ...] = ()

    def destinations_for(self, repository_name: str) -> list[Destination]:
        """Where a push to ``repository_name`` replicates: every destination of every rule covering it, once."""
        found: dict[Destination, None] = {}
        for rule in self.rules:
            if rule.covers(repository_name):
                found.update(dict.fromkeys(rule.destinations))
        return list(found)

    def deletion_destinations_for(self, repository_name: str) -> list[Destination]:
        """Where a deletion (of an image, or of a tag) in ``repository_name`` replicates: the destinations of the
        rules covering it that enable deleteReplication, once each."""
        found: dict[Destination, None] = {}
        for rule in self.rules:
            if rule.delete_replication and rule.covers(repository_name):
                found.update(dict.fromkeys(rule.destinations))
        return list(found)

    def all_destinations(self) -> list[Destination]:
        return list(dict.fromkeys(d for rule in self.rules for d in rule.destinations))

    def json(self) -> dict[str, Any]:
        rules = []
        for rule in self.rules:
            out: dict[str, Any] = {"destinations": [d.json() for d in rule.destinations]}
            if rule.prefixes:
                out["repositoryFilters"] = [{"filter": p, "filterType": PREFIX_MATCH} for p in rule.prefixes]
            if rule.delete_replication is not None:
                out["deleteReplication"] = {"enabled": rule.delete_replication}
            rules.append(out)
        return {"rules": rules}

    def text(self) -> str:
        return json.dumps(self.json(), separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class ReplicationState:
    destination: Destination
    status: str
    failure_code: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class Backfill:
    id: str
    destination: Destination
    status: str
    failure_code: str | None
    total: int
    completed: int
    failed: int
    started_at: float
    ended_at: float | None


@dataclass(frozen=True, slots=True)
class BackfillResult:
    number: int
    repository_id: int
    repository_name: str
    digest: str
    tag: str | None
    status: str
    failure_code: str | None


def parse_configuration(value: dict[str, Any]) -> ReplicationConfiguration:
    """The configuration of a PutReplicationConfiguration request, whose shape the door checked against the model."""
    rules = []
    for rule in value.get("rules", []):
        destinations = tuple(Destination(d["region"], d["registryId"]) for d in rule.get("destinations", []))
        if len(set(destinations)) != len(destinations):
            raise InvalidParameter(
                "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'A replication rule "
                "cannot have duplicate destinations'"
            )
        prefixes = tuple(f["filter"] for f in rule.get("repositoryFilters", []))
        deleting = rule.get("deleteReplication")
        rules.append(
            ReplicationRule(destinations, prefixes, bool(deleting["enabled"]) if deleting is not None else None)
        )
    configuration = ReplicationConfiguration(tuple(rules))
    if len(configuration.all_destinations()) > MAX_DESTINATIONS:
        raise InvalidParameter(
            "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'A replication "
            f"configuration cannot have more than {MAX_DESTINATIONS} unique destinations'"
        )
    return configuration


def check_not_source(configuration: ReplicationConfiguration, *, region: str, registry_id: str) -> None:
    source = Destination(region, registry_id)
    if source in configuration.all_destinations():
        # ECR's words exactly.
        raise InvalidParameter(
            "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'Replication destination "
            "cannot be the same as the source registry'"
        )


def stored_configuration(text: str | None) -> ReplicationConfiguration:
    return parse_configuration(json.loads(text)) if text else ReplicationConfiguration()
