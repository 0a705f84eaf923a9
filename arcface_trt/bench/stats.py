"""Latency statistics and throughput from per-iteration timings.

Percentiles use linear interpolation (numpy's default), the same rule trtexec's
median and percentiles follow closely enough for reporting; ``n`` is always given
so a p99 over five samples is read for what it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from arcface_trt.errors import InputError
from arcface_trt.records import Record

#: Percentiles reported for every latency series.
PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class LatencyStats(Record):
    """Latency of one batch, in milliseconds, over ``n`` timed iterations."""

    n: int
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    min: float
    max: float
    std: float


def latency_stats(samples_ms: Sequence[float] | np.ndarray) -> LatencyStats:
    """Summarize per-iteration latencies (ms); InputError for an empty or non-finite series."""
    values = np.asarray(samples_ms, dtype=np.float64).ravel()
    if values.size == 0:
        raise InputError("no timed iterations to summarize")
    if not np.isfinite(values).all() or (values < 0).any():
        raise InputError("latency samples must be finite and non-negative")
    p50, p90, p95, p99 = (float(v) for v in np.percentile(values, PERCENTILES))
    return LatencyStats(
        n=int(values.size),
        mean=float(values.mean()),
        p50=p50,
        p90=p90,
        p95=p95,
        p99=p99,
        min=float(values.min()),
        max=float(values.max()),
        std=float(values.std()),
    )


def throughput(batch_size: int, samples_ms: Sequence[float] | np.ndarray) -> float:
    """Images per second: images processed over the total timed time (not the mean of rates)."""
    values = np.asarray(samples_ms, dtype=np.float64).ravel()
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    if values.size == 0:
        raise InputError("no timed iterations to compute a throughput from")
    total_s = float(values.sum()) / 1000.0
    if total_s <= 0:
        raise InputError("timed iterations add up to zero time; the clock is too coarse")
    return batch_size * values.size / total_s


def speedup(value: float | None, reference: float | None) -> float | None:
    """``value / reference`` (throughputs), or None when either is missing or the reference is zero."""
    if value is None or reference is None or reference <= 0:
        return None
    return value / reference
