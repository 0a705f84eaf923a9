"""The fake plan format: a header of what the build decided, then the ONNX the engine will run.

The header records the TensorRT version, the GPU's compute capability, the compatibility
level, the builder flags (by name), whether the network was strongly typed, the profile and
the I/O tensors, whether it is refittable and which weights were stripped, so the runtime can
refuse a plan as TensorRT does and run it as it was built. A version-compatible plan carries a
stand-in for TensorRT's lean runtime between the header and the ONNX.
"""

from __future__ import annotations

import json
import struct
from typing import Any

MAGIC = b"FAKETRTPLAN2"


def serialize(header: dict[str, Any], onnx_bytes: bytes, lean_runtime: bytes = b"") -> bytes:
    """The plan's bytes: header, the embedded lean runtime (version-compatible plans), the ONNX."""
    head = json.dumps({**header, "lean_runtime_bytes": len(lean_runtime)}, sort_keys=True).encode()
    return MAGIC + struct.pack("<I", len(head)) + head + lean_runtime + onnx_bytes


def deserialize(data: bytes) -> tuple[dict[str, Any], bytes] | None:
    """(header, ONNX bytes), or None when ``data`` is not a fake plan."""
    start = len(MAGIC) + 4
    if not data.startswith(MAGIC) or len(data) < start:
        return None
    (size,) = struct.unpack("<I", data[len(MAGIC) : start])
    try:
        header = json.loads(data[start : start + size])
    except ValueError:
        return None
    return header, data[start + size + int(header.get("lean_runtime_bytes", 0)) :]
