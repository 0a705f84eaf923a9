"""Engine key and manifest: what makes a plan reusable, and the JSON record beside it.

A TensorRT plan only loads on the TensorRT version and GPU compute capability that
built it, so the key is ``trt{major}.{minor}/{model}-{precision}-sm{arch}.plan``, the
same in the local cache and in S3, with ``{same name}.json`` beside it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from arcface_trt.errors import InputError

_ARCH = re.compile(r"^(?:sm_?)?(\d)\.?(\d{1,2})$", re.IGNORECASE)
_VERSION = re.compile(r"^(\d+)\.(\d+)")
_NAME = re.compile(r"^[A-Za-z0-9._+-]+$")

#: Manifest fields that must agree with a request before a cached plan is reused.
MATCH_FIELDS = (
    "onnx_sha256",
    "precision",
    "sm_arch",
    "trt_version",
    "min_batch",
    "opt_batch",
    "max_batch",
    "hardware_compatibility",
)


#: Manifest fields that may be absent (older or hand-written manifests).
OPTIONAL_FIELDS = ("created_at", "plan_bytes", "build_seconds", "input_name", "embedding_dim", "extra")


def same_trt_version(have: str, want: str) -> bool:
    """Full versions must be equal; a bare ``major.minor`` request matches any patch of it."""
    if want.count(".") <= 1:
        return trt_major_minor(have) == trt_major_minor(want)
    return have == want


def normalize_arch(arch: str | int) -> str:
    """``90``, ``"9.0"``, ``"sm90"``, ``"sm_90"`` -> ``"sm90"``; InputError otherwise."""
    match = _ARCH.match(str(arch).strip())
    if not match:
        raise InputError(f"not a GPU compute capability: {arch!r} (examples: 75, 86, 90, sm89)")
    return f"sm{match.group(1)}{match.group(2)}"


def trt_major_minor(version: str) -> str:
    """``"10.16.1.11"`` -> ``"10.16"``; InputError for anything else."""
    match = _VERSION.match(str(version).strip())
    if not match:
        raise InputError(f"not a TensorRT version: {version!r} (examples: 10.16, 11.4.0)")
    return f"{int(match.group(1))}.{int(match.group(2))}"


@dataclass(frozen=True)
class EngineKey:
    """Identity of a plan: model name, precision, GPU arch, TensorRT major.minor."""

    model: str
    precision: str
    sm_arch: str
    trt_version: str

    def __post_init__(self) -> None:
        if not _NAME.match(self.model):
            raise InputError(f"model name {self.model!r} may only hold letters, digits and . _ + -")
        object.__setattr__(self, "sm_arch", normalize_arch(self.sm_arch))
        object.__setattr__(self, "trt_version", trt_major_minor(self.trt_version))

    @property
    def folder(self) -> str:
        """``trt{major}.{minor}``."""
        return f"trt{self.trt_version}"

    @property
    def plan_name(self) -> str:
        """``{model}-{precision}-sm{arch}.plan``."""
        return f"{self.model}-{self.precision}-{self.sm_arch}.plan"

    @property
    def manifest_name(self) -> str:
        """``{model}-{precision}-sm{arch}.json``."""
        return self.plan_name[: -len(".plan")] + ".json"

    @property
    def plan_relpath(self) -> str:
        """Path of the plan relative to the cache root or S3 prefix."""
        return f"{self.folder}/{self.plan_name}"

    @property
    def manifest_relpath(self) -> str:
        """Path of the manifest relative to the cache root or S3 prefix."""
        return f"{self.folder}/{self.manifest_name}"


@dataclass
class Manifest:
    """The JSON record beside each plan (DESIGN.md lists the required fields)."""

    model: str
    precision: str
    sm_arch: str
    trt_version: str
    onnx_sha256: str
    plan_sha256: str
    min_batch: int
    opt_batch: int
    max_batch: int
    workspace_mb: int
    hardware_compatibility: str
    gpu_name: str | None
    tool_version: str
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    plan_bytes: int | None = None
    build_seconds: float | None = None
    input_name: str | None = None
    embedding_dim: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> EngineKey:
        """The engine key this manifest describes."""
        return EngineKey(self.model, self.precision, self.sm_arch, self.trt_version)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record."""
        return asdict(self)

    def to_json(self) -> str:
        """Serialized manifest (sorted keys, stable for hashing and diffs)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Any, where: str = "manifest") -> Manifest:
        """Parse and check a manifest; InputError names what is wrong."""
        if not isinstance(data, dict):
            raise InputError(f"{where}: a manifest is a JSON object")
        names = {f.name for f in fields(cls)}
        required = names - set(OPTIONAL_FIELDS)
        missing = sorted(required - data.keys())
        if missing:
            raise InputError(f"{where}: manifest lacks {', '.join(missing)}")
        known = {k: v for k, v in data.items() if k in names}
        try:
            return cls(**known)
        except TypeError as exc:
            raise InputError(f"{where}: malformed manifest ({exc})") from None

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """Read a manifest file; InputError for a missing or malformed one."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"manifest not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read manifest {path}: {exc}") from None
        return cls.from_dict(data, str(path))

    def differences(self, expected: dict[str, Any]) -> list[str]:
        """Human-readable list of the :data:`MATCH_FIELDS` where this manifest and ``expected`` differ."""
        out = []
        for name in MATCH_FIELDS:
            if name not in expected:
                continue
            have, want = getattr(self, name), expected[name]
            if name == "trt_version" and same_trt_version(str(have), str(want)):
                continue
            if have != want:
                out.append(f"{name} {have} != {want}")
        return out
