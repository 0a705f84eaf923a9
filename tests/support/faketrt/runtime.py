"""``Runtime``: deserializes fake plans, refusing them as TensorRT does; ``nptype`` and ``volume``."""

from __future__ import annotations

from typing import Any

from tests.support.faketrt import plan
from tests.support.faketrt.engine import NUMPY_TYPES
from tests.support.faketrt.logger import log
from tests.support.faketrt.strict import Strict


class Runtime(Strict):
    """Loads plans built by the same TensorRT version for a compatible GPU; otherwise None and NVIDIA's message."""

    def __init__(self, logger: Any) -> None:
        self._logger = logger

    def _refuse(self, message: str) -> None:
        log(self._env, self._logger, "ERROR", message)

    def deserialize_cuda_engine(self, serialized_engine: Any) -> Any:
        env = self._env
        parsed = plan.deserialize(bytes(serialized_engine))
        if parsed is None:
            return self._refuse(
                "IRuntime::deserializeCudaEngine: Error Code 1: Serialization "
                "(Serialization assertion magicTagRead == kMAGIC_TAG failed.Magic tag does not match)"
            )
        header, onnx_bytes = parsed
        if header["trt_version"] != env.version:
            return self._refuse(
                "IRuntime::deserializeCudaEngine: Error Code 6: API Usage Error "
                "(The engine plan file is not compatible with this version of TensorRT, expecting library version "
                f"{env.version} got {header['trt_version']}, please rebuild.)"
            )
        device = env.device
        if device is None:
            return self._refuse("CUDA initialization failure with error: 35")
        here = f"{device.major}.{device.minor}"
        ok = device.major >= 8 if header["hw"] == "AMPERE_PLUS" else here == header["compute"]
        if not ok:
            return self._refuse(
                "IRuntime::deserializeCudaEngine: Error Code 1: Serialization "
                "(The engine plan file is generated on an incompatible device, "
                f"expecting compute {here} got compute {header['compute']}, please rebuild.)"
            )
        return env.new("ICudaEngine", header, onnx_bytes, self._logger)


def nptype(trt_type: Any) -> type:
    """Numpy type of a DataType; TypeError for the ones numpy has none of (BF16, FP8, INT4, FP4), as the real one."""
    if trt_type.name not in NUMPY_TYPES:
        raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.")
    return NUMPY_TYPES[trt_type.name]


def volume(iterable: Any) -> int:
    """Product of the items."""
    out = 1
    for x in iterable:
        out *= int(x)
    return out
