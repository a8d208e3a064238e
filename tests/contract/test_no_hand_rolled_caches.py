"""Every per-process cache under src/ is an ``ecrd.domain.caches.BoundedCache``: no module keeps an
OrderedDict of its own, nor a dict it empties or trims when it grows past a size.

``functools.lru_cache`` stays allowed on pure functions (a signing key from its inputs, a compiled pattern):
the answer never goes stale, so there is nothing for an owner to decide about trusting an entry.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ecrd"
THE_CACHE = SRC / "domain" / "caches.py"
MODULES = sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts and p != THE_CACHE)
# Ways a size-bounded map forgets entries.
_EVICTIONS = {"clear", "pop", "popitem"}
_THIRD_PARTY_CACHES = {"cachetools", "cachelib", "diskcache"}


def _is_len_of(node: ast.expr) -> ast.expr | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len" and node.args:
        return node.args[0]
    return None


def _grows_past_a_size(test: ast.expr) -> ast.expr | None:
    """The container of a ``len(x) > n`` / ``len(x) >= n`` test."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Gt | ast.GtE):
        return _is_len_of(test.left)
    if isinstance(test, ast.BoolOp):
        for value in test.values:
            found = _grows_past_a_size(value)
            if found is not None:
                return found
    return None


def _evicts(body: list[ast.stmt], container: ast.expr) -> bool:
    target = ast.dump(container)
    for statement in body:
        for node in ast.walk(statement):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _EVICTIONS
                and ast.dump(node.func.value) == target
            ):
                return True
            if isinstance(node, ast.Delete) and any(
                isinstance(t, ast.Subscript) and ast.dump(t.value) == target for t in node.targets
            ):
                return True
    return False


def hand_rolled_caches(source: str) -> list[str]:
    """What in ``source`` looks like a cache of its own: the line and why."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name | ast.Attribute) and (
            getattr(node, "id", None) == "OrderedDict" or getattr(node, "attr", None) == "OrderedDict"
        ):
            found.append(f"line {node.lineno}: an OrderedDict")
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module == "collections"
            and any(alias.name == "OrderedDict" for alias in node.names)
        ):
            found.append(f"line {node.lineno}: imports OrderedDict")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [
                f"line {node.lineno}: imports {name}" for name in names if name.split(".")[0] in _THIRD_PARTY_CACHES
            ]
        elif isinstance(node, ast.If | ast.While):
            container = _grows_past_a_size(node.test)
            if container is not None and _evicts(node.body, container):
                found.append(f"line {node.lineno}: a map trimmed when it grows past a size")
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_per_process_caches_are_bounded_caches(path: Path) -> None:
    found = hand_rolled_caches(path.read_text())
    assert not found, (
        f"{path.relative_to(SRC)} keeps a cache of its own ({'; '.join(found)}): use ecrd.domain.caches.BoundedCache"
    )


@pytest.mark.parametrize(
    "source",
    [
        "from collections import OrderedDict\nx: OrderedDict[str, int] = OrderedDict()\n",
        "import collections\nx = collections.OrderedDict()\n",
        "def put(self, k, v):\n    if len(self._items) >= self.capacity:\n        self._items.clear()\n"
        "    self._items[k] = v\n",
        "def put(self, k, v):\n    while len(self.seen) > 10:\n        self.seen.pop(next(iter(self.seen)))\n",
        "def put(items, k):\n    if len(items) > 99:\n        del items[next(iter(items))]\n",
        "import cachetools\n",
    ],
)
def test_the_check_finds_the_shapes_of_a_hand_rolled_cache(source: str) -> None:
    assert hand_rolled_caches(source)


@pytest.mark.parametrize(
    "source",
    [
        "from ecrd.domain.caches import BoundedCache\ncache: BoundedCache[str, int] = BoundedCache(16)\n",
        "import functools\n@functools.lru_cache(maxsize=8)\ndef f(x: int) -> int:\n    return x\n",
        "def check(tags):\n    if len(tags) > 50:\n        raise ValueError('too many tags')\n",
    ],
)
def test_the_check_lets_the_one_cache_and_plain_limits_pass(source: str) -> None:
    assert hand_rolled_caches(source) == []
