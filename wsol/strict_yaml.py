"""YAML as wsol reads it: safe, with no duplicate keys, and aliases within a bound.

PyYAML's ``safe_load`` keeps the last of two equal keys, so a second ``data:`` block
silently replaces the first; here it is an error. An alias (``*a``) is a reference, cheap
to load, but nine levels of nine make a list of 387 million items once anything walks
it (a ``repr`` in an error message took 9 GB and did not stop on SIGTERM); here a
document whose aliases expand past :data:`MAX_ALIAS_NODES` nodes, or refer to
themselves, is refused while it is composed, before any value is built.

Every refusal is a :class:`yaml.YAMLError`, so callers turn it into their own one-line
error as they do for malformed YAML.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# Nodes the aliases of one document may add when expanded; a real config reuses a block
# or two, a few hundred nodes.
MAX_ALIAS_NODES = 10_000
_MERGE = "tag:yaml.org,2002:merge"


class AliasBombError(yaml.YAMLError):
    """Aliases that would expand a document past the bound, or into itself."""


class DuplicateKeyError(yaml.YAMLError):
    """A mapping with the same key twice."""


def _expanded_size(node: Node, limit: int, memo: dict[int, int], path: set[int]) -> int:
    """The number of nodes ``node`` stands for with every alias expanded (a shared node
    counted each time it is referred to); refused as soon as it passes ``limit``, so the
    count itself stays quick."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in path:
        raise AliasBombError("a YAML alias refers to the node that holds it")
    path.add(key)
    size = 1
    children = node.value if isinstance(node, SequenceNode) else []
    if isinstance(node, MappingNode):
        children = [n for pair in node.value for n in pair]
    for child in children:
        size += _expanded_size(child, limit, memo, path)
        if size > limit:
            raise AliasBombError(
                f"YAML aliases expand the document by more than {MAX_ALIAS_NODES} values; refused"
            )
    path.discard(key)
    memo[key] = size
    return size


def _count_nodes(root: Node) -> int:
    """The nodes of a composed document, each once (as written, aliases not expanded)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, SequenceNode):
            stack.extend(n.value)
        elif isinstance(n, MappingNode):
            stack.extend(x for pair in n.value for x in pair)
    return len(seen)


def check_aliases(root: Node) -> None:
    """Refuse a composed document whose aliases add more than :data:`MAX_ALIAS_NODES`
    nodes when expanded, or make a cycle."""
    _expanded_size(root, _count_nodes(root) + MAX_ALIAS_NODES, {}, set())


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        if isinstance(node, MappingNode):
            keys: dict[tuple[str, str], Any] = {}
            for key_node, _value in node.value:
                if key_node.tag == _MERGE or not isinstance(key_node, ScalarNode):
                    continue
                key = (key_node.tag, key_node.value)
                if key in keys:
                    raise DuplicateKeyError(
                        f"duplicate key {key_node.value[:60]!r} at line "
                        f"{key_node.start_mark.line + 1} (first at line {keys[key] + 1}): "
                        "the second would silently replace the first"
                    )
                keys[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """The one document in ``text``, as ``yaml.safe_load`` reads it, less duplicate keys
    and alias bombs.

    Raises:
        yaml.YAMLError: malformed YAML, a duplicate key, or aliases past the bound.
    """
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        check_aliases(root)
        return loader.construct_document(root)
    except RecursionError:
        raise yaml.YAMLError("YAML nested too deeply") from None
    finally:
        loader.dispose()
