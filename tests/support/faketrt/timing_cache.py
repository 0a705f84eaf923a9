"""``ITimingCache``: kernel timings of one device and TensorRT version, serialized with both.

A cache of another device or TensorRT version is a mismatch: ``set_timing_cache(cache,
ignore_mismatch=False)`` refuses it (and says so in the log), ``ignore_mismatch=True`` takes it
anyway (and the build is recorded as having used a mismatched cache). Unreadable bytes make
``create_timing_cache`` return None. A build adds one entry per layer it had to time (a layer
already in the cache is not timed again); ``queryKeys`` lists the entries.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.faketrt.strict import Strict

MAGIC = b"FAKETRTTIMING2\n"


class ITimingCache(Strict):
    """Timing entries, tagged with the device and TensorRT version that measured them."""

    def __init__(self, device: str, trt_version: str, entries: dict[str, int]) -> None:
        self._device, self._trt_version, self._entries = device, trt_version, dict(entries)

    def _matches(self, device: str, trt_version: str) -> bool:
        return (self._device, self._trt_version) == (device, trt_version)

    def serialize(self) -> Any:
        body = {"device": self._device, "trt_version": self._trt_version, "entries": self._entries}
        return self._env.new("IHostMemory", MAGIC + json.dumps(body, sort_keys=True).encode())

    def combine(self, input_cache: ITimingCache, ignore_mismatch: bool) -> bool:
        if not ignore_mismatch and not input_cache._matches(self._device, self._trt_version):
            return False
        self._entries.update(input_cache._entries)
        return True

    def reset(self) -> bool:
        self._entries = {}
        return True

    def queryKeys(self) -> list:
        return [self._env.new("TimingCacheKey", key) for key in sorted(self._entries)]


class TimingCacheKey(Strict):
    """One entry's key (opaque here)."""

    def __init__(self, key: str) -> None:
        self._key = key


def parse(data: bytes) -> dict[str, Any] | None:
    """The serialized cache's fields, or None for bytes that are not a timing cache."""
    if not data.startswith(MAGIC):
        return None
    try:
        body = json.loads(data[len(MAGIC) :])
    except ValueError:
        return None
    return body if isinstance(body, dict) and {"device", "trt_version", "entries"} <= body.keys() else None
