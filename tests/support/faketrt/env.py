"""What one fake ``tensorrt`` module shares: its version, the fake GPU, its enums, classes and build log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.fakecuda import FakeCuda

VERSIONS = {"10": "10.16.1.11", "11": "11.4.0.106"}


@dataclass
class BuildRecord:
    """What one ``build_serialized_network`` saw: for tests of what the builder was asked to do."""

    flags: frozenset[str]
    strongly_typed: bool
    #: ``none`` (no cache set), ``accepted``, ``refused`` (mismatch, ignore_mismatch False) or
    #: ``mismatch-ignored`` (a cache of another device or version used anyway).
    timing_cache: str
    #: Every layer's timing came from the timing cache (nothing was timed).
    timing_cache_hit: bool = False
    #: The ``ProfilingVerbosity`` member name the engine was built with.
    profiling_verbosity: str = "LAYER_NAMES_ONLY"
    #: A progress monitor was set, and whether it cancelled the build.
    progress_monitor: bool = False
    cancelled: bool = False


@dataclass
class Env:
    """The state of one fake module (``make_tensorrt``): classes are bound to it."""

    major: str
    cuda: FakeCuda | None
    #: Another release of ``major`` than the recorded one (its API is the recorded one's).
    version_override: str | None = None
    enums: dict[str, type] = field(default_factory=dict)
    classes: dict[str, type] = field(default_factory=dict)
    builds: list[BuildRecord] = field(default_factory=list)
    #: ONNX node names whose layers the builder keeps in fp32 under 10.x's FP16 flag (TensorRT may
    #: choose an fp32 tactic where it is faster: the tests set this to make it do so).
    fp32_tactics: set[str] = field(default_factory=set)

    @property
    def version(self) -> str:
        return self.version_override or VERSIONS[self.major]

    @property
    def device(self) -> Any:
        """The fake GPU, or None when there is no driver or no GPU."""
        return self.cuda.device if self.cuda is not None else None

    def new(self, name: str, *args: Any) -> Any:
        """An instance of this module's class ``name``."""
        return self.classes[name](*args)

    def enum(self, name: str) -> type:
        return self.enums[name]
