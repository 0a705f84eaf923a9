"""Manifests: the typed JSON record beside every cached engine.

:class:`Manifest` describes a TensorRT plan (DESIGN.md lists its required fields);
:class:`CpuManifest` describes an ONNX Runtime CPU engine. Both share one reading,
writing and comparing behaviour (:class:`ManifestRecord`), so the artifact cache treats
them alike: a cached engine is reused only when the fields a request names agree.
"""

from __future__ import annotations

import json
import re
import typing
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from arcface_trt.artifacts.key import EngineKey, Variant, same_trt_version
from arcface_trt.artifacts.portability import AMPERE_PLUS, Portability
from arcface_trt.errors import InputError, short_repr
from arcface_trt.fileio import read_regular_file
from arcface_trt.records import Record
from arcface_trt.schema import conforms, type_name, within_depth

#: Largest manifest read, from the cache or the store (one is a few kB; kept fp32 node lists make it longer).
MAX_MANIFEST_BYTES = 1 << 20
#: Deepest nesting of lists and objects in a manifest (the recipe and extra records are shallow).
MAX_MANIFEST_DEPTH = 16
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: How a message names what a ``*_sha256`` or ``*_bytes`` field must hold.
_WANTED = {"sha256": "a sha256 hex digest", "bytes": "a size in bytes (an integer >= 0)"}


def utc_now() -> str:
    """Creation time as manifests record it (ISO 8601, seconds, UTC)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ManifestRecord(Record):
    """What every manifest type shares: JSON in and out, the key it describes, and comparison with a request."""

    #: Fields a manifest file may lack (older or hand-written manifests).
    OPTIONAL_FIELDS: ClassVar[tuple[str, ...]] = ()
    #: Name of the field holding the engine file's sha256.
    SHA_FIELD: ClassVar[str] = ""

    @property
    def key(self) -> EngineKey:
        """The engine key this manifest describes."""
        raise NotImplementedError

    @property
    def artifact_sha256(self) -> str:
        """sha256 of the engine file this manifest vouches for."""
        return str(getattr(self, self.SHA_FIELD))

    def to_json(self) -> str:
        """Serialized manifest (sorted keys, stable for hashing and diffs)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Any, where: str = "manifest") -> Any:
        """Parse and check a manifest (the one parser of every manifest); InputError names what is wrong.

        Checked before anything is built from it: the nesting depth, that every known field has
        its annotated type (unknown fields are ignored: a newer tool may add some), that the
        ``*_sha256`` fields are sha256 hex digests, sizes are not negative, and that the names
        make a valid :class:`EngineKey` (the model-name rule of ``--model``).
        """
        if not isinstance(data, dict):
            raise InputError(f"{where}: a manifest is a JSON object")
        if not within_depth(data, MAX_MANIFEST_DEPTH):
            raise InputError(f"{where}: manifest nests deeper than {MAX_MANIFEST_DEPTH} levels")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        missing = sorted(names - set(cls.OPTIONAL_FIELDS) - data.keys())
        if missing:
            raise InputError(f"{where}: manifest lacks {', '.join(missing)}")
        values = {}
        for name in sorted(names & data.keys()):
            ok, value = conforms(data[name], hints[name])
            if ok and name.endswith("_sha256") and value is not None:
                ok = bool(_SHA256.fullmatch(value))
            if ok and name.endswith("_bytes") and value is not None:
                ok = value >= 0
            if not ok:
                wanted = _WANTED.get(name.rpartition("_")[2], type_name(hints[name]))
                raise InputError(f"{where}: manifest field '{name}' must be {wanted}, got {short_repr(data[name])}")
            values[name] = value
        try:
            record = cls(**values)
            record.key  # noqa: B018 - the names must make a valid engine key
        except InputError as exc:
            raise InputError(f"{where}: malformed manifest ({exc})") from None
        return record

    @classmethod
    def from_json(cls, raw: bytes, where: str = "manifest") -> Any:
        """Parse manifest bytes (at most :data:`MAX_MANIFEST_BYTES`); InputError for anything else."""
        if len(raw) > MAX_MANIFEST_BYTES:
            raise InputError(f"{where}: manifest is larger than {MAX_MANIFEST_BYTES:,} bytes")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise InputError(f"{where}: not a JSON manifest") from None
        except RecursionError:  # json's decoder recurses once per nesting level
            raise InputError(f"{where}: manifest nests deeper than {MAX_MANIFEST_DEPTH} levels") from None
        return cls.from_dict(data, where)

    @classmethod
    def read(cls, path: Path) -> Any:
        """Read a manifest file (a regular file of at most :data:`MAX_MANIFEST_BYTES`); InputError otherwise."""
        return cls.from_json(read_regular_file(path, MAX_MANIFEST_BYTES, "manifest"), str(path))

    def differences(self, expected: dict[str, Any]) -> list[str]:
        """Why this manifest does not serve a request, one reason per differing field of ``expected``.

        A field holding a mapping (calibration settings, the input spec) names the sub-keys that differ,
        among those the request names (a manifest may record more, such as where an input spec came from).
        """
        have = self.to_dict()
        out = []
        for name, want in expected.items():
            got = have.get(name)
            if isinstance(got, dict) and isinstance(want, dict):
                out += [
                    _differs(f"{name}.{sub}", got.get(sub), want[sub])
                    for sub in sorted(want)
                    if got.get(sub) != want[sub]
                ]
            elif not self._same(name, got, want):
                out.append(_differs(name, got, want))
        return out

    def _same(self, name: str, have: Any, want: Any) -> bool:
        return bool(have == want)


def _differs(name: str, have: Any, want: Any) -> str:
    return f"{name}: cached {short_repr(have)}, wanted {short_repr(want)}"


@dataclass
class Manifest(ManifestRecord):
    """The JSON record beside each TensorRT plan."""

    OPTIONAL_FIELDS: ClassVar[tuple[str, ...]] = (
        "created_at",
        "plan_bytes",
        "build_seconds",
        "input_name",
        "embedding_dim",
        "recipe",
        "extra",
        "precision_summary",
        "precision_check",
        "input_spec",
        "weights",
        "version_compatible",
        "lean_runtime",
        "parsed_onnx_sha256",
        "drift_budget",
    )
    SHA_FIELD: ClassVar[str] = "plan_sha256"

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
    created_at: str = field(default_factory=utc_now)
    plan_bytes: int | None = None
    build_seconds: float | None = None
    input_name: str | None = None
    embedding_dim: int | None = None
    #: The non-default build recipe (its option names are the variant's tags); empty for the default.
    recipe: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: What the engine inspector says the layers run in (:class:`~arcface_trt.engine.precision_check.PrecisionSummary`).
    precision_summary: dict[str, Any] | None = None
    #: The mislabel gate's verdict on that summary (:class:`~arcface_trt.engine.precision_check.PrecisionVerdict`).
    precision_check: dict[str, Any] | None = None
    #: The input spec the plan was built for and where it came from (recorded: preprocessing runs on the host).
    input_spec: dict[str, Any] | None = None
    #: ``full``, or ``stripped``: refit at load from the ONNX of ``parsed_onnx_sha256``.
    weights: str = "full"
    #: Later TensorRT versions load the plan; ``lean_runtime`` says whether it carries TensorRT's lean runtime.
    version_compatible: bool = False
    lean_runtime: str | None = None
    #: sha256 of the ONNX the parser was given (after the dynamic-batch rewrite and the precision transform).
    parsed_onnx_sha256: str | None = None
    #: A drift-budget search's record: the budget, the crop sets, the nodes kept, the curve and the final check.
    drift_budget: dict[str, Any] | None = None

    @property
    def key(self) -> EngineKey:
        """The engine key this manifest describes; InputError when its name and its option fields disagree.

        A manifest's recipe names the plan (``stripped``, ``vercompat`` tags; ``sm80+``): its ``weights``,
        ``version_compatible``, ``lean_runtime`` and (for ``sm80+``) ``hardware_compatibility`` must say the same,
        or the plan would be loaded as what it is not.
        """
        key = EngineKey(self.model, self.precision, self.sm_arch, self.trt_version, Variant.of(self.recipe))
        said = Portability.of_key(key)
        have = (self.weights, self.version_compatible, self.lean_runtime)
        if have != (said.weights, said.version_compatible, said.lean_runtime) or (
            key.hardware_compatible and self.hardware_compatibility != AMPERE_PLUS
        ):
            raise InputError(
                f"its name {key.stem} says weights {said.weights}, version_compatible {said.version_compatible}, "
                f"lean_runtime {said.lean_runtime}"
                + (f", hardware_compatibility {AMPERE_PLUS}" if key.hardware_compatible else "")
                + f"; its fields say weights {short_repr(self.weights)}, version_compatible "
                f"{short_repr(self.version_compatible)}, lean_runtime {short_repr(self.lean_runtime)}, "
                f"hardware_compatibility {short_repr(self.hardware_compatibility)}"
            )
        return key

    def _same(self, name: str, have: Any, want: Any) -> bool:
        if name == "trt_version" and have is not None and want is not None:
            return same_trt_version(str(have), str(want))
        return bool(have == want)


@dataclass
class CpuManifest(ManifestRecord):
    """The JSON record beside each CPU engine (``{model}-{precision}-cpu.onnx``)."""

    OPTIONAL_FIELDS: ClassVar[tuple[str, ...]] = (
        "recipe",
        "precision_plan",
        "source_path",
        "build_seconds",
        "input_spec",
        "drift_budget",
    )
    SHA_FIELD: ClassVar[str] = "engine_sha256"

    format: str
    model: str
    precision: str
    onnx_sha256: str
    ort_version: str
    calibration: dict[str, Any] | None
    keep_fp32_nodes: list[str] | None
    saved_optimization: str
    engine_sha256: str
    engine_bytes: int
    created_at: str
    tool_version: str
    source_path: str | None = None
    build_seconds: float | None = None
    recipe: dict[str, Any] = field(default_factory=dict)
    precision_plan: dict[str, Any] = field(default_factory=dict)
    #: The input spec and where it came from; an int8 engine calibrated through it is reused only for the same one.
    input_spec: dict[str, Any] | None = None
    #: A drift-budget search's record: the budget, the crop sets, the nodes kept, the curve and the final check.
    drift_budget: dict[str, Any] | None = None

    @property
    def key(self) -> EngineKey:
        """The engine key this manifest describes."""
        return EngineKey.cpu(self.model, self.precision, Variant.of(self.recipe))


#: The manifest type of each build target.
MANIFEST_TYPES: dict[str, type[ManifestRecord]] = {"gpu": Manifest, "cpu": CpuManifest}
