"""``IHostMemory``: serialized bytes (a plan, a timing cache), with the buffer protocol."""

from __future__ import annotations

from typing import Any

from tests.support.faketrt.strict import Strict


class IHostMemory(Strict):
    """Bytes handed back by TensorRT."""

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)

    @property
    def nbytes(self) -> int:
        return len(self._data)

    @property
    def dtype(self) -> Any:
        return self._env.enum("DataType").UINT8

    def __bytes__(self) -> bytes:
        return self._data

    def __buffer__(self, flags: int) -> memoryview:
        return memoryview(self._data)
