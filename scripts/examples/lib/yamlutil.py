"""YAML and JSON loading that refuses what a careful reader would refuse.

PyYAML keeps the last of two equal keys without a word, and Python's json does the same; a
duplicated key in a proxy or RBAC file is always a mistake (which of the two did the author
mean?), so both loaders here reject it.
"""
from __future__ import annotations

import json
from typing import Any

import yaml


class DuplicateKeyError(ValueError):
    pass


class StrictLoader(yaml.SafeLoader):
    pass


def _mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    out: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in out:
            raise DuplicateKeyError(
                f"duplicate key {key!r} at line {key_node.start_mark.line + 1}"
            )
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_all(text: str) -> list[Any]:
    """Every non-empty document in a (multi-document) YAML text."""
    return [d for d in yaml.load_all(text, Loader=StrictLoader) if d is not None]


def load_one(text: str) -> Any:
    docs = load_all(text)
    if len(docs) != 1:
        raise ValueError(f"expected exactly one YAML document, found {len(docs)}")
    return docs[0]


def _pairs(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise DuplicateKeyError(f"duplicate JSON key {k!r}")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(text: str) -> Any:
    """RFC 8259 JSON: no duplicate keys, no NaN/Infinity (serde_json refuses them too)."""
    return json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
