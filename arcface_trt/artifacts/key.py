"""Engine keys: the one naming scheme of every cached engine (TensorRT plans and CPU engines).

A TensorRT plan only loads on the TensorRT version and GPU compute capability that built
it, so a plan lives at ``trt{major}.{minor}/{model}-{precision}-sm{arch}.plan``, the same in
the local cache and in S3, with ``{same name}.json`` (its manifest) beside it. A CPU engine
lives at ``cpu/{model}-{precision}-cpu.onnx``.

A non-default build recipe (kept-fp32 nodes, stripped weights, version-compatible plans, and
later drift budgets, ...) adds short readable tags and an 8-character hash of the recipe:
``{model}-{precision}-{tags}-{recipe8}-sm{arch}.plan``. A hardware-compatible (Ampere and
newer) plan names ``sm80+`` in place of the arch. :class:`EngineKey` builds every such name
and :meth:`EngineKey.parse` reads every one back (the store's listing too).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from arcface_trt.errors import InputError, short_repr
from arcface_trt.names import PRECISIONS

# Whole-string rules are applied with fullmatch: "$" alone would let a trailing newline through.
_ARCH = re.compile(r"(?:sm_?)?(\d)\.?(\d{1,2})(\+?)", re.IGNORECASE)
_VERSION = re.compile(r"(\d+)\.(\d+)")  # a prefix: "10.16.1.11" is 10.16
_MODEL = re.compile(r"[A-Za-z0-9._+-]+")
_TAG = re.compile(r"[a-z][a-z0-9]{0,11}")
_RECIPE = re.compile(r"[0-9a-f]{8}")
_FOLDER = re.compile(r"trt(\d+\.\d+)")

#: The platform part of a CPU engine's name, and its folder.
CPU = "cpu"
#: The compute capability a hardware-compatible (``ampere_plus``) plan is named for.
AMPERE_PLUS_ARCH = "sm80+"
#: Recipe options (so name tags) of the plans that travel (:mod:`arcface_trt.artifacts.portability`):
#: weights stripped (refit at load), version-compatible, and version-compatible without its lean runtime.
STRIPPED = "stripped"
VERSION_COMPATIBLE = "vercompat"
LEAN_EXCLUDED = "nolean"
PLAN_SUFFIX = ".plan"
CPU_SUFFIX = ".onnx"
MANIFEST_SUFFIX = ".json"


def normalize_arch(arch: str | int) -> str:
    """``90``, ``"9.0"``, ``"sm90"``, ``"sm_90"`` -> ``"sm90"``; ``"80+"`` -> ``"sm80+"``; InputError otherwise."""
    match = _ARCH.fullmatch(str(arch).strip())
    if not match:
        raise InputError(f"not a GPU compute capability: {arch!r} (examples: 75, 86, 90, sm89)")
    return f"sm{match.group(1)}{match.group(2)}{match.group(3)}"


def compute_capability(sm_arch: str) -> str | None:
    """``"sm89"`` -> ``"8.9"``, ``"sm100"`` -> ``"10.0"`` (CUDA's spelling); None for ``sm80+``, which names no one GPU.

    The minor version is the last digit: NVIDIA's minors are single digits, and GPU records name
    archs ``sm{major}{minor}``.
    """
    arch = normalize_arch(sm_arch)
    if arch.endswith("+"):
        return None
    digits = arch[2:]
    return f"{digits[:-1]}.{digits[-1]}"


def trt_major_minor(version: str) -> str:
    """``"10.16.1.11"`` -> ``"10.16"``; InputError for anything else."""
    match = _VERSION.match(str(version).strip())
    if not match:
        raise InputError(f"not a TensorRT version: {version!r} (examples: 10.16, 11.4.0)")
    return f"{int(match.group(1))}.{int(match.group(2))}"


def same_trt_version(have: str, want: str) -> bool:
    """Full versions must be equal; a bare ``major.minor`` request matches any patch of it."""
    if want.count(".") <= 1:
        return trt_major_minor(have) == trt_major_minor(want)
    return have == want


@dataclass(frozen=True)
class Variant:
    """A non-default build recipe as it shows in a name: readable tags plus an 8-character recipe hash.

    The default recipe has no tags and no hash, so its names are the familiar ones.
    """

    tags: tuple[str, ...] = ()
    recipe: str = ""

    def __post_init__(self) -> None:
        if not self.tags and not self.recipe:
            return
        bad = [t for t in self.tags if not _TAG.fullmatch(t) or t in PRECISIONS]
        if not self.tags or bad or not _RECIPE.fullmatch(self.recipe):
            raise InputError(f"not an engine variant: tags {list(self.tags)}, recipe {self.recipe!r}")

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> Variant:
        """The variant of a recipe: its option names as tags, a hash of names and values as the recipe.

        Empty options are the default recipe.
        """
        if not options:
            return cls()
        text = json.dumps(dict(options), sort_keys=True, separators=(",", ":"), default=str)
        return cls(tuple(sorted(options)), hashlib.sha256(text.encode()).hexdigest()[:8])

    @property
    def is_default(self) -> bool:
        """True for the default recipe."""
        return not self.tags

    @property
    def parts(self) -> tuple[str, ...]:
        """The name tokens this variant adds (none for the default recipe)."""
        return (*self.tags, self.recipe) if self.tags else ()

    def __str__(self) -> str:
        return "default" if self.is_default else "-".join(self.parts)


def check_model_name(model: str) -> str:
    """``model`` when it may name an engine, else an InputError: the one model-name rule.

    Letters, digits and ``. _ + -`` only, not starting with a dot: a name is a file name in the
    cache and part of an S3 key, so it never holds a path separator, ``..``, markup or a
    control character (a trailing newline included). ``--model`` options, engine keys, store
    listings and names derived from an ONNX file's name all pass through here.
    """
    if not isinstance(model, str) or not _MODEL.fullmatch(model) or model.startswith("."):
        raise InputError(
            f"model name {short_repr(model)} may only hold letters, digits and . _ + - and may not start with '.' "
            "(an engine is named after its ONNX file: rename a file whose name breaks this rule)"
        )
    return model


def engine_stem(model: str, precision: str, variant: Variant, platform: str) -> str:
    """``{model}-{precision}[-{tags}-{recipe8}]-{platform}``: the one place a name is put together.

    :class:`EngineKey` uses it for real names; a dry run without a GPU passes ``sm<arch>`` as the
    platform. The model name must pass :func:`check_model_name`, so a dry run shows only names a build accepts.
    """
    return "-".join((check_model_name(model), precision, *variant.parts, platform))


@dataclass(frozen=True)
class EngineKey:
    """Identity of one cached engine: model, precision, platform and variant.

    A TensorRT plan has an ``sm_arch`` (``sm90``, or ``sm80+`` for a hardware-compatible
    plan) and the TensorRT ``major.minor`` that built it; a CPU engine has ``sm_arch ==
    "cpu"`` and no TensorRT version (see :meth:`cpu`).
    """

    model: str
    precision: str
    sm_arch: str = CPU
    trt_version: str | None = None
    variant: Variant = Variant()

    def __post_init__(self) -> None:
        check_model_name(self.model)
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown precision {self.precision!r} in an engine key (choose {', '.join(PRECISIONS)})")
        if self.sm_arch == CPU:
            if self.trt_version is not None:
                raise InputError("a CPU engine has no TensorRT version")
            return
        object.__setattr__(self, "sm_arch", normalize_arch(self.sm_arch))
        if self.trt_version is None:
            raise InputError(f"a TensorRT plan key needs the TensorRT version ({self.model}, {self.sm_arch})")
        object.__setattr__(self, "trt_version", trt_major_minor(self.trt_version))

    @classmethod
    def cpu(cls, model: str, precision: str, variant: Variant = Variant()) -> EngineKey:
        """The key of an ONNX Runtime CPU engine."""
        return cls(model, precision, CPU, None, variant)

    @property
    def target(self) -> str:
        """``gpu`` (a TensorRT plan) or ``cpu`` (a CPU engine)."""
        return "cpu" if self.sm_arch == CPU else "gpu"

    @property
    def stripped(self) -> bool:
        """A weight-stripped plan (refit from its ONNX at load)."""
        return STRIPPED in self.variant.tags

    @property
    def version_compatible(self) -> bool:
        """A version-compatible plan (later TensorRT versions load it)."""
        return VERSION_COMPATIBLE in self.variant.tags

    @property
    def hardware_compatible(self) -> bool:
        """A plan named for every GPU of a range of archs (``sm80+``), not for one."""
        return self.sm_arch.endswith("+")

    @property
    def folder(self) -> str:
        """``trt{major}.{minor}`` for a plan, ``cpu`` for a CPU engine."""
        return CPU if self.sm_arch == CPU else f"trt{self.trt_version}"

    @property
    def stem(self) -> str:
        """``{model}-{precision}[-{tags}-{recipe8}]-{sm_arch}``."""
        return engine_stem(self.model, self.precision, self.variant, self.sm_arch)

    @property
    def name(self) -> str:
        """File name of the engine: ``{stem}.plan`` or ``{stem}.onnx``."""
        return self.stem + (CPU_SUFFIX if self.sm_arch == CPU else PLAN_SUFFIX)

    @property
    def manifest_name(self) -> str:
        """File name of the manifest: ``{stem}.json``."""
        return self.stem + MANIFEST_SUFFIX

    @property
    def relpath(self) -> str:
        """Path of the engine relative to the cache root or the S3 prefix."""
        return f"{self.folder}/{self.name}"

    @property
    def manifest_relpath(self) -> str:
        """Path of the manifest relative to the cache root or the S3 prefix."""
        return f"{self.folder}/{self.manifest_name}"

    @classmethod
    def parse(cls, relpath: str) -> tuple[EngineKey, bool] | None:
        """Read ``folder/name`` back into ``(key, is_manifest)``; None when it is not an engine's name."""
        folder, _, filename = relpath.rpartition("/")
        stem, dot, suffix = filename.rpartition(".")
        if not dot or "/" in folder:
            return None
        suffix = "." + suffix
        version_match = _FOLDER.fullmatch(folder)
        if folder == CPU:
            if suffix not in (CPU_SUFFIX, MANIFEST_SUFFIX):
                return None
            version = None
        elif version_match and suffix in (PLAN_SUFFIX, MANIFEST_SUFFIX):
            version = version_match.group(1)
        else:
            return None
        parts = _split_stem(stem)
        if parts is None:
            return None
        model, precision, variant, arch = parts
        if (arch == CPU) != (version is None):
            return None
        try:
            key = cls(model, precision, arch, version, variant)
        except InputError:
            return None
        # Only names this class would write: "sm_90" or "SM90" are not engine names.
        if key.stem != stem:
            return None
        return key, suffix == MANIFEST_SUFFIX


def _split_stem(stem: str) -> tuple[str, str, Variant, str] | None:
    """``model-precision[-tags-recipe]-platform`` -> its parts (tags are never precision names)."""
    tokens = stem.split("-")
    if len(tokens) < 3:
        return None
    arch = tokens[-1]
    if _RECIPE.fullmatch(tokens[-2]):
        positions = [i for i, token in enumerate(tokens[:-2]) if token in PRECISIONS]
        if not positions or positions[-1] < 1 or positions[-1] > len(tokens) - 4:
            return None
        at = positions[-1]
        try:
            variant = Variant(tuple(tokens[at + 1 : -2]), tokens[-2])
        except InputError:
            return None
        return "-".join(tokens[:at]), tokens[at], variant, arch
    return "-".join(tokens[:-2]), tokens[-2], Variant(), arch
