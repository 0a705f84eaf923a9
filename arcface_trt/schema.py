"""Type checks of values read from outside (config files, manifests) against dataclass field annotations.

A YAML or JSON document is untrusted: before a value reaches a dataclass it must have the
field's type (``int`` is not ``bool``, ``str | None`` admits ``null``, ``list[str]`` holds only
strings, ``dict[str, Any]`` has string keys) and the document must not nest deeper than its
reader allows, so no later walk over it (copying, comparing, printing) can recurse without end.
"""

from __future__ import annotations

import types
import typing
from typing import Any


def conforms(value: Any, annotation: Any) -> tuple[bool, Any]:
    """Whether ``value`` has the type ``annotation`` names, and the value as the field stores it.

    Conversions: a list for a ``tuple[...]`` field becomes a tuple, an int for a ``float``
    field becomes a float. ``Any`` accepts every value (bound its depth with :func:`within_depth`).
    """
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True, value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None:
            return (type(None) in args), None
        for arg in args:
            if arg is type(None):
                continue
            ok, converted = conforms(value, arg)
            if ok:
                return True, converted
        return False, value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            return False, value
        item_type = typing.get_args(annotation)[0]
        items = [conforms(v, item_type) for v in value]
        if not all(ok for ok, _ in items):
            return False, value
        return True, origin(converted for _, converted in items)
    if origin is dict:
        key_type, value_type = typing.get_args(annotation)
        if not isinstance(value, dict):
            return False, value
        ok = all(conforms(k, key_type)[0] and conforms(v, value_type)[0] for k, v in value.items())
        return ok, value
    if annotation is bool:
        return isinstance(value, bool), value
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if annotation is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if annotation is str:
        return isinstance(value, str), value
    return False, value


def type_name(annotation: Any) -> str:
    """How a message names a field's type (``str | None``, ``tuple[str, ...]``)."""
    return str(annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")


def within_depth(value: Any, limit: int) -> bool:
    """True when lists and mappings in ``value`` nest at most ``limit`` levels (checked without recursion)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth >= limit:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True
