"""Plans that travel: the build options that let a plan leave the machine, TensorRT version and GPU that built it.

One decision point (as :mod:`arcface_trt.precision.plan` is for precision): for the options

- ``strip_weights``: ``BuilderFlag.STRIP_PLAN`` + ``REFIT_IDENTICAL``. The plan keeps the kernels and only
  the weights TensorRT needs for performance; the rest are refit at load from the ONNX the plan was
  parsed from (``REFIT_IDENTICAL``, not ``REFIT``: TensorRT 11.3 documents that ``REFIT`` can drop a GEMM
  bias, ``REFIT_IDENTICAL`` does not);
- ``hardware_compatibility``: ``none``, ``same_cc`` (``SAME_COMPUTE_CAPABILITY``: keeps the arch's name)
  or ``ampere_plus`` (``AMPERE_PLUS``: named ``sm80+``);
- ``version_compatible``: ``BuilderFlag.VERSION_COMPATIBLE``, with TensorRT's lean runtime embedded in the
  plan, unless ``exclude_lean_runtime`` (``EXCLUDE_LEAN_RUNTIME``: the plan is then loaded through
  ``Runtime.load_runtime`` with the lean runtime library of the TensorRT that built it)

:class:`Portability` says which builder flags are set, what the options add to the build recipe (so to
the engine name, :class:`~arcface_trt.artifacts.key.Variant`), which arch the plan is named for and what
the manifest records. Stripped and version-compatible together are refused (:func:`check_options`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arcface_trt.artifacts.key import (
    AMPERE_PLUS_ARCH,
    LEAN_EXCLUDED,
    STRIPPED,
    VERSION_COMPATIBLE,
    EngineKey,
    compute_capability,
    normalize_arch,
)
from arcface_trt.errors import ConfigError, InputError
from arcface_trt.names import HARDWARE_COMPATIBILITY

#: ``weights`` in a manifest.
WEIGHTS_FULL = "full"
WEIGHTS_STRIPPED = "stripped"
#: ``lean_runtime`` in the manifest of a version-compatible plan.
LEAN_EMBEDDED = "embedded"
LEAN_RUNTIME_EXCLUDED = "excluded"
#: The hardware level whose plans are named ``sm80+``.
AMPERE_PLUS = "ampere_plus"


def check_options(strip_weights: bool, version_compatible: bool, exclude_lean_runtime: bool) -> None:
    """The rule across the options (a :class:`ConfigError` naming the settings and the options)."""
    if strip_weights and version_compatible:
        raise ConfigError(
            "tensorrt.strip_weights (--strip-weights) cannot be combined with tensorrt.version_compatible "
            "(--version-compatible): a version-compatible plan runs on TensorRT's lean runtime, which arcface-trt "
            "does not refit; build a stripped plan or a version-compatible one"
        )
    if exclude_lean_runtime and not version_compatible:
        raise ConfigError(
            "tensorrt.exclude_lean_runtime (--exclude-lean-runtime) applies to version-compatible plans only: "
            "set tensorrt.version_compatible (--version-compatible) too"
        )


@dataclass(frozen=True)
class Portability:
    """Where a plan may travel; see the module docstring."""

    hardware_compatibility: str = "none"
    strip_weights: bool = False
    version_compatible: bool = False
    exclude_lean_runtime: bool = False

    def __post_init__(self) -> None:
        if self.hardware_compatibility not in HARDWARE_COMPATIBILITY:
            raise ConfigError(
                f"unknown hardware compatibility {self.hardware_compatibility!r} "
                f"(choose {', '.join(HARDWARE_COMPATIBILITY)})"
            )
        check_options(self.strip_weights, self.version_compatible, self.exclude_lean_runtime)

    @classmethod
    def from_settings(cls, settings: Any) -> Portability:
        """The options of a ``tensorrt:`` section (:class:`~arcface_trt.config.TensorrtSection`)."""
        return cls(
            settings.hardware_compatibility,
            settings.strip_weights,
            settings.version_compatible,
            settings.exclude_lean_runtime,
        )

    @classmethod
    def of_key(cls, key: EngineKey) -> Portability:
        """What an engine name says of its plan (``same_cc`` is not in a name: the manifest says it).

        An :class:`InputError` for a name (read from a store or a cache) whose tags no build makes.
        """
        try:
            return cls(
                AMPERE_PLUS if key.hardware_compatible else "none",
                key.stripped,
                key.version_compatible,
                LEAN_EXCLUDED in key.variant.tags,
            )
        except ConfigError:
            raise InputError(
                f"{key.stem} names options no plan is built with ({', '.join(key.variant.tags)})"
            ) from None

    @property
    def recipe(self) -> dict[str, Any]:
        """What the options add to the build recipe (their names are the engine name's tags)."""
        options: dict[str, Any] = {}
        if self.strip_weights:
            options[STRIPPED] = True
        if self.version_compatible:
            options[VERSION_COMPATIBLE] = True
        if self.exclude_lean_runtime:
            options[LEAN_EXCLUDED] = True
        return options

    @property
    def set_flags(self) -> tuple[str, ...]:
        """``trt.BuilderFlag`` member names to set (the hardware level is a config property, not a flag)."""
        flags: tuple[str, ...] = ()
        if self.strip_weights:
            flags += ("STRIP_PLAN", "REFIT_IDENTICAL")
        if self.version_compatible:
            flags += ("VERSION_COMPATIBLE",)
        if self.exclude_lean_runtime:
            flags += ("EXCLUDE_LEAN_RUNTIME",)
        return flags

    @property
    def weights(self) -> str:
        """``full`` or ``stripped``."""
        return WEIGHTS_STRIPPED if self.strip_weights else WEIGHTS_FULL

    @property
    def lean_runtime(self) -> str | None:
        """``embedded`` or ``excluded`` for a version-compatible plan, else None."""
        if not self.version_compatible:
            return None
        return LEAN_RUNTIME_EXCLUDED if self.exclude_lean_runtime else LEAN_EMBEDDED

    def plan_arch(self, gpu_arch: str | None) -> str | None:
        """The arch a plan built on ``gpu_arch`` is named for: ``sm80+`` for ``ampere_plus``, else the GPU's.

        None when the GPU is unknown (a dry run without ``--arch``) and the name depends on it.
        """
        if self.hardware_compatibility == AMPERE_PLUS:
            return AMPERE_PLUS_ARCH
        return normalize_arch(gpu_arch) if gpu_arch else None

    def check_gpu(self, gpu_arch: str) -> None:
        """An :class:`InputError` when a plan with these options cannot be built on ``gpu_arch``."""
        capability = compute_capability(gpu_arch)
        if self.hardware_compatibility == AMPERE_PLUS and capability and float(capability) < 8.0:
            raise InputError(
                f"hardware_compatibility ampere_plus is built on an Ampere or newer GPU (sm80+); this one is "
                f"{normalize_arch(gpu_arch)}: build it on such a GPU, or use none or same_cc"
            )

    def manifest_fields(self) -> dict[str, Any]:
        """What a manifest records of the options (and what a cached plan must match)."""
        return {
            "hardware_compatibility": self.hardware_compatibility,
            "weights": self.weights,
            "version_compatible": self.version_compatible,
            "lean_runtime": self.lean_runtime,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record (dry runs): the options and the builder flags they set."""
        return {**self.manifest_fields(), "set_flags": list(self.set_flags)}
