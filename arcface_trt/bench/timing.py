"""The timing loop: warm-up (excluded), then a fixed count or a fixed duration of timed calls.

Several functions compared side by side are timed round-robin (:func:`run_interleaved`).

Every call is timed on the host with ``time.perf_counter``. A function may also
return named timings it measured itself (CUDA events: ``{"h2d_ms": ..,
"compute_ms": .., "d2h_ms": ..}``); those are kept per iteration beside the host time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from arcface_trt.errors import InputError

#: trtexec's defaults: 200 ms of warm-up, 3 s of timed runs.
DEFAULT_WARMUP_S = 0.2
DEFAULT_DURATION_S = 3.0
#: A duration-bound run still times at least this many calls, so percentiles mean something.
MIN_ITERATIONS = 3

Timed = Callable[[], Mapping[str, float] | None]


@dataclass(frozen=True)
class TimingPlan:
    """How long to warm up and how much to time: ``iterations`` or ``duration_s``, not both."""

    iterations: int | None = None
    duration_s: float | None = None
    warmup_s: float = DEFAULT_WARMUP_S
    min_iterations: int = MIN_ITERATIONS

    def __post_init__(self) -> None:
        if self.iterations is not None and self.duration_s is not None:
            raise InputError("give --iterations or --duration, not both")
        if self.iterations is not None and self.iterations < 1:
            raise InputError(f"--iterations must be at least 1, got {self.iterations}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise InputError(f"--duration must be more than 0 seconds, got {self.duration_s}")
        if not self.warmup_s >= 0:
            raise InputError(f"--warmup must be 0 or more seconds, got {self.warmup_s}")
        if self.iterations is None and self.duration_s is None:
            object.__setattr__(self, "duration_s", DEFAULT_DURATION_S)

    def sentence(self) -> str:
        """How much is timed, in words: ``0.2 s warm-up excluded, then 3 timed calls``."""
        amount = (
            f"{self.iterations} timed calls"
            if self.iterations is not None
            else f"{self.duration_s:g} s of timed calls (at least {self.min_iterations})"
        )
        return f"{self.warmup_s:g} s warm-up excluded (at least one call), then {amount}"

    def describe(self) -> dict[str, float | int | None]:
        """JSON-friendly record of the plan."""
        return {"iterations": self.iterations, "duration_s": self.duration_s, "warmup_s": self.warmup_s}


@dataclass
class Samples:
    """Per-iteration host times (ms) and any named timings the function returned."""

    host_ms: list[float] = field(default_factory=list)
    parts: dict[str, list[float]] = field(default_factory=dict)
    warmup_iterations: int = 0

    def add(self, host_ms: float, parts: Mapping[str, float] | None) -> None:
        """Record one timed iteration."""
        self.host_ms.append(host_ms)
        for name, value in (parts or {}).items():
            self.parts.setdefault(name, []).append(float(value))


def ignore_result(fn: Callable[[], Any]) -> Timed:
    """Wrap ``fn`` so its result (embeddings) is dropped: only its time is of interest."""

    def call() -> None:
        fn()

    return call


def warm_up(fn: Timed, seconds: float, clock: Callable[[], float] = time.perf_counter) -> int:
    """Call ``fn`` at least once and until ``seconds`` have passed; returns the number of calls."""
    start = clock()
    count = 0
    while True:
        fn()
        count += 1
        if clock() - start >= seconds:
            return count


def run_interleaved(
    functions: Mapping[str, Timed],
    plan: TimingPlan,
    clock: Callable[[], float] = time.perf_counter,
    on_done: Callable[[str], None] | None = None,
) -> dict[str, Samples]:
    """Warm each function up (not recorded), then time them round-robin, one call each per round.

    Interleaving makes load that comes and goes on a shared machine hit every function
    alike, so figures compared side by side stay comparable. Each function stops on its
    own when ``plan`` is met for it (its count, or its own timed seconds); ``on_done``
    is told its name then.
    """
    samples = {name: Samples(warmup_iterations=warm_up(fn, plan.warmup_s, clock)) for name, fn in functions.items()}
    timed_s = dict.fromkeys(functions, 0.0)
    pending = list(functions)
    while pending:
        for name in list(pending):
            before = clock()
            parts = functions[name]()
            after = clock()
            samples[name].add((after - before) * 1000.0, parts)
            timed_s[name] += after - before
            if _done(plan, len(samples[name].host_ms), timed_s[name]):
                pending.remove(name)
                if on_done is not None:
                    on_done(name)
    return samples


def run_timed(fn: Timed, plan: TimingPlan, clock: Callable[[], float] = time.perf_counter) -> Samples:
    """Warm up (not recorded), then time ``fn`` per ``plan``."""
    return run_interleaved({"fn": fn}, plan, clock)["fn"]


def _done(plan: TimingPlan, count: int, elapsed_s: float) -> bool:
    if plan.iterations is not None:
        return count >= plan.iterations
    return count >= plan.min_iterations and elapsed_s >= (plan.duration_s or 0.0)
