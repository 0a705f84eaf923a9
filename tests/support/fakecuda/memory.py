"""Fake device memory (``cudaMalloc``) and page-locked host memory (``cudaMallocHost``).

"Device" memory is host memory, so the fake engine can compute on it, but every copy must
name the right kinds of memory and stay within one allocation, as CUDA checks.
"""

from __future__ import annotations

import ctypes
from typing import Any

DEVICE = "device"
HOST = "host"


class Memory:
    """The live allocations: address -> (kind, size, buffer)."""

    def __init__(self) -> None:
        self.blocks: dict[int, tuple[str, int, Any]] = {}

    def allocate(self, size: int, kind: str) -> int:
        """A new zero-filled block of ``size`` bytes; its address."""
        buffer = ctypes.create_string_buffer(size)
        address = ctypes.addressof(buffer)
        self.blocks[address] = (kind, size, buffer)
        return address

    def free(self, address: int, kind: str) -> bool:
        """Release the block at ``address`` if it is one of ``kind``."""
        entry = self.blocks.get(int(address))
        if entry is None or entry[0] != kind:
            return False
        del self.blocks[int(address)]
        return True

    def within(self, address: int, size: int, kind: str) -> bool:
        """True when [address, address + size) lies inside one allocation of ``kind``."""
        for base, (k, n, _) in self.blocks.items():
            if base <= address and address + size <= base + n:
                return k == kind
        return False

    def used(self, kind: str) -> int:
        """Bytes allocated of ``kind``."""
        return sum(n for k, n, _ in self.blocks.values() if k == kind)

    def outstanding(self) -> list[tuple[str, int]]:
        """Allocations not freed: (kind, size)."""
        return [(k, n) for k, n, _ in self.blocks.values()]
