"""The GPUs a fake driver reports, and the device-properties record cuda-python returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FakeDevice:
    """One fake GPU."""

    name: str = "NVIDIA H100 80GB HBM3"
    major: int = 9
    minor: int = 0
    total_bytes: int = 80 * 1024**3
    free_bytes: int = 79 * 1024**3


@dataclass
class cudaDeviceProp:
    name: bytes
    major: int
    minor: int
    totalGlobalMem: int
