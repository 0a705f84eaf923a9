"""Latency statistics, throughput, speedup and the warm-up-excluded timing loop."""

from __future__ import annotations

import numpy as np
import pytest

from arcface_trt.bench.stats import latency_stats, speedup, throughput
from arcface_trt.bench.timing import TimingPlan, run_interleaved, run_timed, warm_up
from arcface_trt.errors import InputError


def test_latency_stats_match_numpy_on_a_known_series() -> None:
    samples = [float(v) for v in range(1, 101)]  # 1..100 ms
    stats = latency_stats(samples)
    assert stats.n == 100
    assert stats.mean == pytest.approx(50.5)
    assert stats.min == 1.0 and stats.max == 100.0
    assert stats.p50 == pytest.approx(50.5)
    assert stats.p90 == pytest.approx(np.percentile(samples, 90))
    assert stats.p95 == pytest.approx(95.05)
    assert stats.p99 == pytest.approx(99.01)
    assert set(stats.to_dict()) == {"n", "mean", "p50", "p90", "p95", "p99", "min", "max", "std"}


def test_percentiles_are_ordered_on_a_skewed_series() -> None:
    rng = np.random.default_rng(0)
    stats = latency_stats(rng.lognormal(3.0, 0.8, size=500))
    assert stats.min <= stats.p50 <= stats.p90 <= stats.p95 <= stats.p99 <= stats.max
    assert stats.mean > stats.p50  # right-skewed: the mean is pulled up by the tail


def test_throughput_is_images_over_total_time_not_mean_of_rates() -> None:
    # 32 images per batch, batches of 100 ms and 300 ms: 64 images in 0.4 s = 160 img/s
    assert throughput(32, [100.0, 300.0]) == pytest.approx(160.0)
    # the mean of per-batch rates would be (320 + 106.7) / 2 = 213.3: not what is reported
    assert throughput(32, [100.0, 300.0]) != pytest.approx(213.33, rel=1e-3)


@pytest.mark.parametrize("bad", [[], [float("nan")], [-1.0]])
def test_bad_series_are_input_errors(bad: list[float]) -> None:
    with pytest.raises(InputError):
        latency_stats(bad)


def test_throughput_rejects_bad_batch_and_zero_time() -> None:
    with pytest.raises(InputError):
        throughput(0, [1.0])
    with pytest.raises(InputError):
        throughput(4, [0.0, 0.0])


def test_speedup() -> None:
    assert speedup(300.0, 100.0) == pytest.approx(3.0)
    assert speedup(300.0, None) is None and speedup(None, 1.0) is None and speedup(1.0, 0.0) is None


class FakeClock:
    """A clock that only moves when the timed function 'runs' for its scripted duration."""

    def __init__(self, durations: list[float]) -> None:
        self.now = 0.0
        self.durations = list(durations)
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def run(self) -> None:
        self.now += self.durations[self.calls] if self.calls < len(self.durations) else self.durations[-1]
        self.calls += 1


def test_warm_up_calls_at_least_once_and_until_the_time_is_spent() -> None:
    clock = FakeClock([0.1])
    assert warm_up(clock.run, 0.25, clock) == 3
    clock = FakeClock([0.1])
    assert warm_up(clock.run, 0.0, clock) == 1


def test_warm_up_is_excluded_from_the_samples() -> None:
    # two slow first calls (1 s: lazy allocation), then 10 ms calls
    clock = FakeClock([1.0, 1.0, 0.01])
    samples = run_timed(clock.run, TimingPlan(iterations=5, warmup_s=1.5), clock)
    assert samples.warmup_iterations == 2
    assert samples.host_ms == pytest.approx([10.0] * 5)
    assert latency_stats(samples.host_ms).max == pytest.approx(10.0)


def test_duration_mode_runs_until_the_duration_and_at_least_min_iterations() -> None:
    clock = FakeClock([0.1])
    samples = run_timed(clock.run, TimingPlan(duration_s=0.95, warmup_s=0.0), clock)
    assert len(samples.host_ms) == 10  # 10 x 100 ms reaches 0.95 s
    clock = FakeClock([2.0])
    samples = run_timed(clock.run, TimingPlan(duration_s=0.5, warmup_s=0.0), clock)
    assert len(samples.host_ms) == 3  # one call alone passes the duration; percentiles need a few


def test_named_parts_returned_by_the_function_are_kept_per_iteration() -> None:
    clock = FakeClock([0.002])

    def fn() -> dict[str, float]:
        clock.run()
        return {"h2d_ms": 0.5, "compute_ms": 1.0, "d2h_ms": 0.25}

    samples = run_timed(fn, TimingPlan(iterations=4, warmup_s=0.0), clock)
    assert samples.parts == {"h2d_ms": [0.5] * 4, "compute_ms": [1.0] * 4, "d2h_ms": [0.25] * 4}


@pytest.mark.parametrize(
    "kwargs",
    [{"iterations": 3, "duration_s": 1.0}, {"iterations": 0}, {"duration_s": 0.0}, {"warmup_s": -1.0}],
)
def test_bad_plans_are_input_errors(kwargs: dict) -> None:
    with pytest.raises(InputError):
        TimingPlan(**kwargs)


def test_default_plan_is_trtexec_like() -> None:
    plan = TimingPlan()
    assert plan.duration_s == 3.0 and plan.warmup_s == 0.2 and plan.iterations is None


def test_interleaved_functions_are_timed_round_robin_after_their_warm_ups() -> None:
    clock = FakeClock([0.01])
    calls: list[str] = []

    def make(name: str, seconds: float):
        def fn() -> None:
            calls.append(name)
            clock.now += seconds

        return fn

    done: list[str] = []
    samples = run_interleaved(
        {"a": make("a", 0.1), "b": make("b", 0.3)}, TimingPlan(iterations=3, warmup_s=0.0), clock, done.append
    )
    assert calls == ["a", "b"] + ["a", "b"] * 3  # one warm-up each, then A, B, A, B, ...
    assert samples["a"].host_ms == pytest.approx([100.0] * 3) and samples["b"].host_ms == pytest.approx([300.0] * 3)
    assert done == ["a", "b"]


def test_interleaved_duration_is_per_function() -> None:
    clock = FakeClock([0.0])

    def make(seconds: float):
        def fn() -> None:
            clock.now += seconds

        return fn

    samples = run_interleaved({"fast": make(0.1), "slow": make(1.0)}, TimingPlan(duration_s=0.45, warmup_s=0.0), clock)
    assert len(samples["slow"].host_ms) == 3  # min iterations, though one call passes the duration
    assert len(samples["fast"].host_ms) == 5  # its own 0.45 s of timed calls, not the wall time of both
