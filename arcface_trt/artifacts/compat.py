"""Which plans run here, and in which order they are taken: exact first, then compatible.

A TensorRT plan loads on the GPU arch and the TensorRT version that built it, unless it was built to
travel (:mod:`arcface_trt.artifacts.portability`):

- a hardware-compatible plan (``sm80+``) loads on every GPU of compute capability 8.0 or newer
  (:func:`arch_runs`); a ``same_cc`` plan keeps its arch's name and loads where that arch's plans load;
- a version-compatible plan (tag ``vercompat``) loads on the TensorRT versions NVIDIA supports for its
  builder's version (:func:`version_runs`).

:meth:`PlanRequest.candidates` orders the plans of a list (the local cache's, the store's) that can serve
a request: the same TensorRT version before a version-compatible one of another, the GPU's own arch
before ``sm80+``, the requested weights form before the other (a stripped plan is refit from the local
ONNX into the same engine), the requested version compatibility before the other, and the newest
builder first. The exact plan, when present, is always first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from arcface_trt.artifacts.key import AMPERE_PLUS_ARCH, EngineKey, Variant, compute_capability, normalize_arch
from arcface_trt.artifacts.portability import AMPERE_PLUS, Portability

#: Builder major -> the later major whose runtime NVIDIA supports for the builder's version-compatible
#: plans (TensorRT 11.4.1 support matrix: "TensorRT 10 version-compatible engines can run with a TensorRT 11
#: runtime, and TensorRT 8 version-compatible engines can run with a TensorRT 10 runtime. No other
#: combination across major versions is supported").
CROSS_MAJOR = {8: 10, 10: 11}
#: The first TensorRT that builds version-compatible plans ("supported from version 8.6").
FIRST_VERSION_COMPATIBLE = (8, 6)
#: What a :class:`Match` is: the plan's own TensorRT version and arch, another arch, another version.
EXACT = "exact"
HARDWARE_COMPATIBLE = "hardware-compatible"
VERSION_COMPATIBLE = "version-compatible"

_NUMBERS = re.compile(r"\d+(?:\.\d+)*")


def version_parts(version: str) -> tuple[int, ...]:
    """``"10.16.1.11"`` -> ``(10, 16, 1, 11)``; ``()`` for text that is no version (a manifest is untrusted)."""
    match = _NUMBERS.match(str(version).strip())
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def version_runs(builder: str, runtime: str) -> bool:
    """Does TensorRT ``runtime`` load a version-compatible plan built by TensorRT ``builder``, as NVIDIA documents?

    The builder must be 8.6 or later and not newer than the runtime, and of the runtime's major or of the
    one major :data:`CROSS_MAJOR` names (10.x plans on 11.x, 8.6+ plans on 10.x). Versions compare on the
    parts both give: ``"10.16"`` against ``"10.16.1.11"`` compares 10.16 with 10.16.
    """
    built, here = version_parts(builder), version_parts(runtime)
    if len(built) < 2 or len(here) < 2 or built[:2] < FIRST_VERSION_COMPATIBLE:
        return False
    common = min(len(built), len(here))
    if built[:common] > here[:common]:
        return False
    return built[0] == here[0] or CROSS_MAJOR.get(built[0]) == here[0]


def runtimes_text(builder: str) -> str:
    """Which TensorRT versions load a version-compatible plan of ``builder``, in words (``inspect``, dry runs)."""
    parts = version_parts(builder)
    if len(parts) < 2 or parts[:2] < FIRST_VERSION_COMPATIBLE:
        return f"none: TensorRT {builder} builds no version-compatible plans"
    later = CROSS_MAJOR.get(parts[0])
    text = f"TensorRT {parts[0]}.{parts[1]} and later {parts[0]}.x"
    return text + (f", and {later}.x" if later else "")


def arch_runs(plan_arch: str, gpu_arch: str) -> bool:
    """Does a plan named for ``plan_arch`` load on a GPU of ``gpu_arch``? ``sm80+``: compute capability 8.0 or newer."""
    plan, gpu = normalize_arch(plan_arch), normalize_arch(gpu_arch)
    if plan == gpu:
        return True
    capability = compute_capability(gpu)
    return plan == AMPERE_PLUS_ARCH and capability is not None and float(capability) >= 8.0


def kind_of(key: EngineKey, gpu_arch: str, trt_version: str) -> str:
    """How the plan of ``key`` relates to a machine with ``gpu_arch`` and TensorRT ``trt_version``.

    :data:`EXACT` (same TensorRT ``major.minor`` and arch), :data:`HARDWARE_COMPATIBLE` (same version, another
    arch) or :data:`VERSION_COMPATIBLE` (another version). Whether the plan loads there at all is
    :func:`arch_runs` and :func:`version_runs`'s question.
    """
    if version_parts(str(key.trt_version))[:2] != version_parts(trt_version)[:2]:
        return VERSION_COMPATIBLE
    return EXACT if normalize_arch(key.sm_arch) == normalize_arch(gpu_arch) else HARDWARE_COMPATIBLE


@dataclass(frozen=True)
class Match:
    """A plan that can serve a request: its key, how it relates to the exact plan, and what its name promises."""

    key: EngineKey
    #: :data:`EXACT` (this TensorRT version and GPU arch), :data:`HARDWARE_COMPATIBLE` or :data:`VERSION_COMPATIBLE`.
    kind: str
    #: The request's exact plan.
    wanted: EngineKey
    #: The TensorRT version that will load it (full, or ``major.minor``).
    runtime_version: str

    @property
    def portability(self) -> Portability:
        """The options the plan's name says it was built with."""
        return Portability.of_key(self.key)

    def describe(self) -> str:
        """``trt10.16/m-fp16-sm80+.plan (hardware-compatible: sm80+ on this sm86; weights stripped: ...)``."""
        notes = []
        if self.kind == HARDWARE_COMPATIBLE:
            notes.append(f"hardware-compatible: {self.key.sm_arch} on this {self.wanted.sm_arch}")
        elif self.kind == VERSION_COMPATIBLE:
            notes.append(f"version-compatible: built by TensorRT {self.key.trt_version}, run by {self.runtime_version}")
        if self.key.stripped and not self.wanted.stripped:
            notes.append("weights stripped: refit from the local ONNX")
        elif self.wanted.stripped and not self.key.stripped:
            notes.append("weights included")
        if self.key.version_compatible and self.kind != VERSION_COMPATIBLE and not self.wanted.version_compatible:
            notes.append("a version-compatible plan")
        return self.key.relpath + (f" ({'; '.join(notes)})" if notes else "")

    def expected(self) -> dict[str, Any]:
        """The manifest fields the plan's name promises, to be checked beside the request's model and batch fields.

        A version-compatible plan may come from any patch release of its folder's version (:meth:`accepts`
        checks the manifest's full version); any other plan must be of the loading TensorRT's exact version.
        """
        portability = self.portability
        fields: dict[str, Any] = {
            "sm_arch": self.key.sm_arch,
            "trt_version": self.key.trt_version if self.key.version_compatible else self.runtime_version,
            "weights": portability.weights,
            "version_compatible": portability.version_compatible,
            "lean_runtime": portability.lean_runtime,
        }
        if self.key.hardware_compatible:
            fields["hardware_compatibility"] = AMPERE_PLUS
        return fields

    def accepts(self, builder_version: str) -> bool:
        """Does the loading TensorRT run the plan its manifest says TensorRT ``builder_version`` built?"""
        return not self.key.version_compatible or version_runs(builder_version, self.runtime_version)


@dataclass(frozen=True)
class PlanRequest:
    """The plan a machine asks for: model, precision, recipe and options, for its GPU arch and TensorRT version."""

    model: str
    precision: str
    #: The precision plan's recipe (kept fp32 nodes); the options add theirs.
    base_recipe: Mapping[str, Any]
    portability: Portability
    #: This GPU's arch (``sm86``), or the one ``--arch`` names.
    gpu_arch: str
    #: The TensorRT version that loads the plan (full, or ``major.minor``).
    trt_version: str

    def key_of(self, portability: Portability) -> EngineKey:
        """The key of the plan with ``portability`` for this request."""
        variant = Variant.of({**self.base_recipe, **portability.recipe})
        arch = portability.plan_arch(self.gpu_arch) or self.gpu_arch
        return EngineKey(self.model, self.precision, arch, self.trt_version, variant)

    @property
    def key(self) -> EngineKey:
        """The exact plan asked for."""
        return self.key_of(self.portability)

    def _forms(self) -> list[Portability]:
        """The options of the plans that serve this request: the requested ones, full and stripped, version-compatible.

        A plan without its lean runtime is only taken when asked for (it needs the lean runtime library of
        the TensorRT that built it, which is configured for that request).
        """
        level = self.portability.hardware_compatibility
        forms = [
            self.portability,
            Portability(level),
            Portability(level, strip_weights=True),
            Portability(level, version_compatible=True),
        ]
        return list(dict.fromkeys(forms))

    def candidates(self, available: Iterable[EngineKey]) -> list[Match]:
        """The plans among ``available`` that run here, best first (see the module docstring)."""
        wanted = self.key
        forms = {Variant.of({**self.base_recipe, **form.recipe}): form for form in self._forms()}
        ranked = []
        for key in set(available):
            form = forms.get(key.variant)
            if form is None or key.target != "gpu" or (key.model, key.precision) != (self.model, self.precision):
                continue
            if not arch_runs(key.sm_arch, self.gpu_arch):
                continue
            kind = kind_of(key, wanted.sm_arch, self.trt_version)
            same_version = kind != VERSION_COMPATIBLE
            if not same_version and not (
                key.version_compatible and version_runs(str(key.trt_version), self.trt_version)
            ):
                continue
            other_arch = key.sm_arch != wanted.sm_arch
            rank = (
                key != wanted,
                not same_version,
                other_arch,
                key.stripped != wanted.stripped,
                key.version_compatible != wanted.version_compatible,
                tuple(-part for part in version_parts(str(key.trt_version))),
                key.relpath,
            )
            ranked.append((rank, Match(key, kind, wanted, self.trt_version)))
        return [match for _, match in sorted(ranked, key=lambda item: item[0])]
