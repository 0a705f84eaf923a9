"""``Runtime``: deserializes fake plans, refusing them as TensorRT does; ``nptype`` and ``volume``.

- A plan loads on the TensorRT version that built it and on its GPU's compute capability; an
  ``AMPERE_PLUS`` plan on every GPU of compute capability 8.0 or newer.
- A version-compatible plan also loads on the later versions NVIDIA supports (same major, or 8.6+ on
  10.x, 10.x on 11.x; never an older runtime). Its embedded lean runtime is host code: the runtime
  refuses it unless ``engine_host_code_allowed`` was set.
- A version-compatible plan built with ``EXCLUDE_LEAN_RUNTIME`` loads only through the runtime
  ``load_runtime(path)`` returns for the lean runtime library of the TensorRT that built it (the fake
  library is a file holding :data:`LEAN_LIBRARY_MAGIC` and a version); such a lean runtime loads
  nothing else. Whether the full runtime of the same version could load it too is not modelled
  (NVIDIA documents only ``loadRuntime`` for it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.faketrt import plan
from tests.support.faketrt.engine import NUMPY_TYPES
from tests.support.faketrt.logger import log
from tests.support.faketrt.strict import Strict

#: What the fake lean runtime library (libnvinfer_lean.so) starts with; its version follows.
LEAN_LIBRARY_MAGIC = b"FAKE-LIBNVINFER-LEAN "
#: Builder major -> the later major NVIDIA supports for its version-compatible plans.
_LATER_MAJOR = {8: 10, 10: 11}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def version_compatible_runs(built: str, runtime: str) -> bool:
    """NVIDIA's rule for a version-compatible plan of TensorRT ``built`` on TensorRT ``runtime``."""
    b, r = _version(built), _version(runtime)
    if b[:2] < (8, 6) or b > r:
        return False
    return b[0] == r[0] or _LATER_MAJOR.get(b[0]) == r[0]


def write_lean_library(path: Path, version: str) -> Path:
    """A fake ``libnvinfer_lean.so`` of TensorRT ``version`` (for tests of plans built without their lean runtime)."""
    path.write_bytes(LEAN_LIBRARY_MAGIC + version.encode())
    return path


class Runtime(Strict):
    """Loads plans the way TensorRT does (see the module docstring); otherwise None and NVIDIA's message."""

    def __init__(self, logger: Any) -> None:
        self._logger = logger
        self._host_code = False
        #: The version of the lean runtime library this runtime was loaded from (None: the full runtime).
        self._lean_version: str | None = None

    @property
    def engine_host_code_allowed(self) -> bool:
        return self._host_code

    @engine_host_code_allowed.setter
    def engine_host_code_allowed(self, allowed: bool) -> None:
        self._host_code = bool(allowed)

    def _refuse(self, message: str) -> None:
        log(self._env, self._logger, "ERROR", message)

    def load_runtime(self, path: str) -> Any:
        try:
            data = Path(path).read_bytes()
        except OSError:
            data = b""
        if not data.startswith(LEAN_LIBRARY_MAGIC):
            return self._refuse(f"IRuntime::loadRuntime: Error Code 1: could not load the runtime library {path}")
        lean = self._env.new("Runtime", self._logger)
        lean._lean_version = data[len(LEAN_LIBRARY_MAGIC) :].decode()
        return lean

    def _version_problem(self, header: dict[str, Any]) -> str | None:
        """Why this runtime cannot load a plan of this TensorRT version and kind (None when it can)."""
        env, built = self._env, header["trt_version"]
        flags = set(header["flags"])
        version_compatible = "VERSION_COMPATIBLE" in flags
        lean_excluded = version_compatible and "EXCLUDE_LEAN_RUNTIME" in flags
        if self._lean_version is not None:
            if lean_excluded and built == self._lean_version:
                return None
            return (
                f"IRuntime::deserializeCudaEngine: Error Code 6: API Usage Error (the lean runtime of TensorRT "
                f"{self._lean_version} loads only version-compatible plans it built without their lean runtime; "
                f"this plan is of TensorRT {built})"
            )
        if lean_excluded:
            return (
                "IRuntime::deserializeCudaEngine: Error Code 6: API Usage Error (the plan was built with "
                f"kEXCLUDE_LEAN_RUNTIME: load it with the runtime IRuntime::loadRuntime returns for the lean "
                f"runtime library of TensorRT {built})"
            )
        if version_compatible:
            if not self._host_code:
                return (
                    "IRuntime::deserializeCudaEngine: Error Code 1: Serialization (the plan holds host code "
                    "(a lean runtime): call IRuntime::setEngineHostCodeAllowed(true) to deserialize it)"
                )
            if not version_compatible_runs(built, env.version):
                return (
                    "IRuntime::deserializeCudaEngine: Error Code 6: API Usage Error (a version-compatible plan of "
                    f"TensorRT {built} cannot run on TensorRT {env.version})"
                )
            return None
        if built != env.version:
            return (
                "IRuntime::deserializeCudaEngine: Error Code 6: API Usage Error "
                "(The engine plan file is not compatible with this version of TensorRT, expecting library version "
                f"{env.version} got {built}, please rebuild.)"
            )
        return None

    def deserialize_cuda_engine(self, serialized_engine: Any) -> Any:
        env = self._env
        parsed = plan.deserialize(bytes(serialized_engine))
        if parsed is None:
            return self._refuse(
                "IRuntime::deserializeCudaEngine: Error Code 1: Serialization "
                "(Serialization assertion magicTagRead == kMAGIC_TAG failed.Magic tag does not match)"
            )
        header, onnx_bytes = parsed
        problem = self._version_problem(header)
        if problem is not None:
            return self._refuse(problem)
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
