"""pybind11-style enums with the values of NVIDIA's headers (``tests/support/tensorrt-api/enum-values.json``)."""

from __future__ import annotations

import functools
import json
from typing import Any

from tests.support.paths import TENSORRT_API_VENDORED


class EnumValue:
    """One pybind11 enum value: ``.name``, ``.value``, ``int()``."""

    __slots__ = ("_enum", "_name", "_value")

    def __init__(self, enum_name: str, name: str, value: int) -> None:
        self._enum, self._name, self._value = enum_name, name, value

    @property
    def name(self) -> str:
        return self._name

    @property
    def value(self) -> int:
        return self._value

    def __int__(self) -> int:
        return self._value

    __index__ = __int__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EnumValue) and (other._enum, other._value) == (self._enum, self._value)

    def __hash__(self) -> int:
        return hash((self._enum, self._value))

    def __repr__(self) -> str:
        return f"<{self._enum}.{self._name}: {self._value}>"


@functools.lru_cache(maxsize=1)
def header_values() -> dict[str, Any]:
    """The recorded header values, by TensorRT major ("10", "11")."""
    return json.loads((TENSORRT_API_VENDORED / "enum-values.json").read_text())


def make_enum(major: str, type_name: str) -> type:
    """The enum class ``type_name`` of TensorRT ``major``, its members and values from the headers."""
    values: dict[str, int] = header_values()[major]["enums"][type_name]
    cls = type(type_name, (), {"__doc__": f"fake enum {type_name} (values of TensorRT {major}'s headers)"})
    for name, value in values.items():
        setattr(cls, name, EnumValue(type_name, name, value))
    return cls


def members(enum: type) -> dict[str, EnumValue]:
    """The values of a fake enum class, by name."""
    return {name: value for name, value in vars(enum).items() if isinstance(value, EnumValue)}
