"""The one bounded per-process cache: its capacity, its least-recently-used order, and its use from many
threads at once; and the caches built on it keep their own rules (generations, proofs, parsed policies)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecrd.domain.caches import BoundedCache
from ecrd.metadata.generations import GenerationCache, Generations
from ecrd.metadata.store import MetadataStore
from ecrd.services.authorization import PolicyCache

THREADS = 8
OPERATIONS_PER_THREAD = 2000
JOIN_SECONDS = 30.0

POLICY = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}]}'


def test_a_cache_never_holds_more_than_its_capacity() -> None:
    cache: BoundedCache[int, str] = BoundedCache(capacity=3)
    for number in range(10):
        cache.put(number, str(number))
    assert len(cache) == 3
    assert [cache.get(n) for n in range(10)] == [None] * 7 + ["7", "8", "9"]


def test_the_least_recently_used_entry_is_the_one_evicted() -> None:
    cache: BoundedCache[str, int] = BoundedCache(capacity=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_putting_an_existing_key_replaces_it_and_makes_it_recent() -> None:
    cache: BoundedCache[str, int] = BoundedCache(capacity=2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), len(cache)) == (10, None, 2)


def test_get_or_load_loads_once_and_pop_and_clear_forget() -> None:
    cache: BoundedCache[str, int] = BoundedCache(capacity=4)
    loads: list[str] = []

    def load() -> int:
        loads.append("x")
        return 7

    assert cache.get_or_load("x", load) == 7
    assert cache.get_or_load("x", load) == 7
    assert loads == ["x"]
    assert cache.pop("x") == 7 and cache.get("x") is None
    cache.put("y", 1)
    cache.clear()
    assert len(cache) == 0


def test_a_cache_holds_at_least_one_entry() -> None:
    with pytest.raises(ValueError):
        BoundedCache(capacity=0)


def test_many_threads_at_once_keep_it_bounded_and_consistent() -> None:
    cache: BoundedCache[int, int] = BoundedCache(capacity=64)
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work(seed: int) -> None:
        try:
            start.wait(timeout=JOIN_SECONDS)
            for i in range(OPERATIONS_PER_THREAD):
                key = (seed * 7919 + i) % 200
                if i % 3 == 0:
                    cache.put(key, key * 2)
                elif i % 3 == 1:
                    found = cache.get(key)
                    assert found is None or found == key * 2
                else:
                    assert cache.get_or_load(key, functools.partial(int.__mul__, key, 2)) == key * 2
                assert len(cache) <= 64
        except BaseException as exc:  # reported by the main thread, which the assertion cannot reach
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_SECONDS)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert len(cache) == 64


@pytest.fixture
def generations(tmp_path: Path) -> Iterator[Generations]:
    store = MetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    store.migrate()
    yield Generations(store)
    store.dispose()


def test_a_full_generation_cache_evicts_its_least_recently_used_entry_not_all(generations: Generations) -> None:
    cache: GenerationCache[str, int] = GenerationCache(generations, capacity=2)
    loads: list[str] = []

    def loader(key: str, value: int) -> int:
        loads.append(key)
        return value

    cache.get("a", lambda: loader("a", 1))
    cache.get("b", lambda: loader("b", 2))
    cache.get("a", lambda: loader("a", 1))
    cache.get("c", lambda: loader("c", 3))  # full: "b", the least recently used, goes
    cache.get("a", lambda: loader("a", 1))
    cache.get("c", lambda: loader("c", 3))
    assert loads == ["a", "b", "c"]


def test_a_generation_cache_remembers_a_none_it_loaded(generations: Generations) -> None:
    cache: GenerationCache[str, int | None] = GenerationCache(generations)
    loads: list[str] = []

    def load() -> None:
        loads.append("x")

    assert cache.get("x", load) is None
    assert cache.get("x", load) is None
    assert loads == ["x"]


def test_parsed_policies_are_kept_in_one_bounded_cache() -> None:
    policies = PolicyCache(capacity=2)
    first = policies.parse(POLICY)
    assert policies.parse(POLICY) is first
    for n in range(3):
        policies.parse(POLICY.replace("ecr:*", f"ecr:Action{n}"))
    assert len(policies.documents) == 2
