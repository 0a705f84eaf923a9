"""``IBuilderConfig`` and ``IOptimizationProfile``: what a build is asked to do, as TensorRT records it.

TF32 is on by default, as in TensorRT; flags are kept by value, so a flag of the other
major's numbering would set the wrong one. ``profiling_verbosity`` defaults to
``LAYER_NAMES_ONLY``, as in TensorRT; ``progress_monitor`` takes an ``IProgressMonitor`` only.
"""

from __future__ import annotations

from typing import Any

from tests.support.faketrt import timing_cache
from tests.support.faketrt.enums import EnumValue, members
from tests.support.faketrt.logger import log
from tests.support.faketrt.network import Dims
from tests.support.faketrt.strict import Strict


class IOptimizationProfile(Strict):
    """min / opt / max shapes per input."""

    def __init__(self) -> None:
        self._shapes: dict[str, tuple[tuple, tuple, tuple]] = {}

    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
        self._shapes[input] = (tuple(min), tuple(opt), tuple(max))

    def get_shape(self, input: str) -> list[Dims]:
        return [Dims(s) for s in self._shapes.get(input, ((), (), ()))]


class IBuilderConfig(Strict):
    """Pools, flags, compatibility level, profiles and the timing cache of one build."""

    def __init__(self, logger: Any = None) -> None:
        # The builder's logger (the real config reports through it too).
        env = self._env
        self._logger = logger
        self._pools = {int(env.enum("MemoryPoolType").WORKSPACE): 1 << 40}
        self._flags = {int(env.enum("BuilderFlag").TF32)}
        self._hw = env.enum("HardwareCompatibilityLevel").NONE
        self._profiles: list[IOptimizationProfile] = []
        self._timing: timing_cache.ITimingCache | None = None
        self._timing_state = "none"
        self._verbosity = env.enum("ProfilingVerbosity").LAYER_NAMES_ONLY
        self._monitor: Any = None

    def _flag_names(self) -> frozenset[str]:
        """The names of the flags set (for the build record), every alias of a value (10.x: WEIGHTLESS = STRIP_PLAN)."""
        return frozenset(n for n, v in members(self._env.enum("BuilderFlag")).items() if int(v) in self._flags)

    def set_memory_pool_limit(self, pool: Any, pool_size: int) -> None:
        self._pools[int(pool)] = int(pool_size)

    def get_memory_pool_limit(self, pool: Any) -> int:
        return self._pools.get(int(pool), 0)

    def set_flag(self, flag: Any) -> None:
        self._flags.add(int(flag))

    def clear_flag(self, flag: Any) -> None:
        self._flags.discard(int(flag))

    def get_flag(self, flag: Any) -> bool:
        return int(flag) in self._flags

    @property
    def hardware_compatibility_level(self) -> Any:
        return self._hw

    @hardware_compatibility_level.setter
    def hardware_compatibility_level(self, value: Any) -> None:
        if not (isinstance(value, EnumValue) and value._enum == "HardwareCompatibilityLevel"):
            raise TypeError(f"incompatible type for hardware_compatibility_level: {value!r}")
        self._hw = value

    @property
    def profiling_verbosity(self) -> Any:
        return self._verbosity

    @profiling_verbosity.setter
    def profiling_verbosity(self, value: Any) -> None:
        if not (isinstance(value, EnumValue) and value._enum == "ProfilingVerbosity"):
            raise TypeError(f"incompatible type for profiling_verbosity: {value!r}")
        self._verbosity = value

    @property
    def progress_monitor(self) -> Any:
        return self._monitor

    @progress_monitor.setter
    def progress_monitor(self, monitor: Any) -> None:
        if monitor is not None and not isinstance(monitor, self._env.classes["IProgressMonitor"]):
            raise TypeError(f"incompatible type for progress_monitor: {type(monitor).__name__}")
        self._monitor = monitor

    @property
    def num_optimization_profiles(self) -> int:
        return len(self._profiles)

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        self._profiles.append(profile)
        return len(self._profiles) - 1

    def _here(self) -> tuple[str, str]:
        device = self._env.device
        return (device.name if device is not None else "", self._env.version)

    def create_timing_cache(self, serialized_timing_cache: Any) -> Any:
        data = bytes(serialized_timing_cache)
        if not data:
            return self._env.new("ITimingCache", *self._here(), {})
        body = timing_cache.parse(data)
        if body is None:
            if self._logger is not None:
                log(self._env, self._logger, "ERROR", "ITimingCache: the serialized timing cache is corrupted")
            return None
        return self._env.new("ITimingCache", body["device"], body["trt_version"], body["entries"])

    def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
        matches = cache._matches(*self._here())
        if not matches and not ignore_mismatch:
            if self._logger is not None:
                log(
                    self._env,
                    self._logger,
                    "WARNING",
                    "The timing cache was built for another device or TensorRT version and is not used "
                    "(ignoreMismatch is false)",
                )
            self._timing, self._timing_state = None, "refused"
            return False
        self._timing, self._timing_state = cache, "accepted" if matches else "mismatch-ignored"
        return True

    def get_timing_cache(self) -> Any:
        return self._timing
