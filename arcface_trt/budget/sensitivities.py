"""Per-group sensitivities of a drift-budget search, kept in the artifact cache so a new budget reuses them.

A record lives at ``{cache}/search/{model}-{precision}-{mode}-{key16}.json``, where the key is a
sha256 of everything a sensitivity depends on: the model's sha256, the precision, the way
candidates are run (``cpu-engine`` or ``onnxruntime-proxy``), the input spec, the calibration
settings and the pixels of the calibration and evaluation crops, the groups and the ONNX
Runtime version. A record that fails to parse, or whose key differs, is measured again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import typing
from dataclasses import dataclass, fields
from typing import Any

from arcface_trt.artifacts.cache import ArtifactCache
from arcface_trt.errors import InputError
from arcface_trt.records import Record
from arcface_trt.schema import conforms

log = logging.getLogger("arcface_trt")

FORMAT = "arcface-trt-sensitivities/1"
FOLDER = "search"
#: Largest record read (a few hundred bytes per group).
MAX_RECORD_BYTES = 1 << 20


@dataclass(frozen=True)
class Sensitivity(Record):
    """One group alone in low precision (every other node in full precision): its drift on the sensitivity crops."""

    group: int
    label: str
    nodes: int
    mean_drift: float
    max_drift: float

    @classmethod
    def from_dict(cls, data: Any) -> Sensitivity:
        """Parse a cached entry; InputError when a field is missing or of the wrong type."""
        if not isinstance(data, dict):
            raise InputError("a sensitivity is a JSON object")
        hints = typing.get_type_hints(cls)
        values = {}
        for item in fields(cls):
            ok, value = conforms(data.get(item.name), hints[item.name])
            if not ok:
                raise InputError(f"sensitivity field '{item.name}' is missing or of the wrong type")
            values[item.name] = value
        return cls(**values)


def cache_key(parts: dict[str, Any]) -> str:
    """sha256 of ``parts`` as canonical JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class SensitivityCache:
    """Reads and writes sensitivity records under the artifact cache root."""

    def __init__(self, cache: ArtifactCache, model: str, precision: str, mode: str, parts: dict[str, Any]) -> None:
        self.key = cache_key({"format": FORMAT, **parts})
        self.path = cache.record_path(FOLDER, f"{model}-{precision}-{mode}-{self.key[:16]}.json")
        self._cache = cache

    def load(self, groups: int) -> list[Sensitivity] | None:
        """The cached sensitivities of ``groups`` groups, or None (absent, unreadable or another key)."""
        if not self.path.exists():
            return None
        try:
            data = json.loads(self._cache.read_record(self.path, MAX_RECORD_BYTES))
            if not isinstance(data, dict) or data.get("key") != self.key:
                raise InputError("the record was made for other inputs")
            entries = data.get("sensitivities")
            found = [Sensitivity.from_dict(entry) for entry in (entries if isinstance(entries, list) else [])]
            if sorted(s.group for s in found) != list(range(groups)):
                raise InputError(f"the record does not cover the {groups} groups")
        except (InputError, ValueError, RecursionError) as exc:
            log.debug("measuring sensitivities again: %s: %s", self.path, exc)
            return None
        return found

    def store(self, sensitivities: list[Sensitivity]) -> None:
        """Write the record atomically."""
        record = {"format": FORMAT, "key": self.key, "sensitivities": [s.to_dict() for s in sensitivities]}
        self._cache.store_record(self.path, json.dumps(record, indent=2, sort_keys=True) + "\n")
