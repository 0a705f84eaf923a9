"""GPU facts through cuda-python: device count, name, compute capability, memory.

cuda-python 13.x imports as ``from cuda.bindings import runtime``; 12.x also offered
``from cuda import cudart`` (deprecated in 12.9, gone in 13). Every call returns a
tuple whose first item is the error code. With no driver, ``cudaGetDeviceCount``
returns ``cudaErrorInsufficientDriver`` (35); with a driver but no GPU,
``cudaErrorNoDevice`` (100). Each case is a specific :class:`BackendUnavailableError`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

from arcface_trt.errors import BackendUnavailableError

CUDA_SUCCESS = 0
CUDA_ERROR_INSUFFICIENT_DRIVER = 35
CUDA_ERROR_NO_DEVICE = 100

INSTALL_HINT = "pip install 'arcface-trt[gpu]' (cuda-python matching the TensorRT wheel's CUDA major)"


def cuda_runtime() -> ModuleType:
    """The cuda-python runtime module (``cuda.bindings.runtime``, else the older ``cuda.cudart``)."""
    try:
        from cuda.bindings import runtime  # type: ignore[import-not-found]

        return runtime
    except ImportError:
        pass
    try:
        from cuda import cudart  # type: ignore[import-not-found,attr-defined]

        return cudart
    except ImportError:
        raise BackendUnavailableError(
            f"cuda-python is not installed (no module cuda.bindings); install it with: {INSTALL_HINT}"
        ) from None


def error_string(rt: ModuleType, err: Any) -> str:
    """``cudaGetErrorString`` as text, with the numeric code."""
    try:
        _, text = rt.cudaGetErrorString(err)
        text = text.decode() if isinstance(text, bytes) else str(text)
    except Exception:  # a failing error lookup must not hide the original error
        text = "unknown CUDA error"
    return f"{text} (CUDA error {int(err)})"


def check(rt: ModuleType, result: Any, what: str) -> Any:
    """Unpack a cuda-python result tuple; raise :class:`BackendUnavailableError` on a CUDA error.

    Returns None, the single value, or a tuple of the values after the error code.
    """
    if not isinstance(result, tuple):
        result = (result,)
    err, values = result[0], result[1:]
    if int(err) != CUDA_SUCCESS:
        raise BackendUnavailableError(f"{what} failed: {error_string(rt, err)}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def device_count(rt: ModuleType | None = None) -> int:
    """Number of CUDA GPUs; :class:`BackendUnavailableError` naming no driver / no GPU."""
    rt = rt or cuda_runtime()
    err, count = rt.cudaGetDeviceCount()
    code = int(err)
    if code == CUDA_ERROR_INSUFFICIENT_DRIVER:
        raise BackendUnavailableError(
            "no usable NVIDIA driver (cudaGetDeviceCount: cudaErrorInsufficientDriver, 35): "
            "TensorRT needs an NVIDIA GPU with a driver recent enough for the installed CUDA runtime"
        )
    if code == CUDA_ERROR_NO_DEVICE or (code == CUDA_SUCCESS and not count):
        raise BackendUnavailableError("no CUDA GPU found (the NVIDIA driver is loaded but reports no device)")
    if code != CUDA_SUCCESS:
        raise BackendUnavailableError(f"cannot count CUDA GPUs: {error_string(rt, err)}")
    return int(count)


@dataclass(frozen=True)
class GpuInfo:
    """One GPU: what the engine key and the manifest need."""

    index: int
    name: str
    major: int
    minor: int
    total_bytes: int
    free_bytes: int

    @property
    def sm_arch(self) -> str:
        """Compute capability as ``sm{major}{minor}`` (``sm90`` for H100)."""
        return f"sm{self.major}{self.minor}"

    @property
    def compute_capability(self) -> str:
        """``"9.0"`` style."""
        return f"{self.major}.{self.minor}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record."""
        return {**asdict(self), "sm_arch": self.sm_arch, "compute_capability": self.compute_capability}


def gpu_info(index: int = 0, rt: ModuleType | None = None) -> GpuInfo:
    """Facts about GPU ``index``; :class:`BackendUnavailableError` when there is none."""
    rt = rt or cuda_runtime()
    count = device_count(rt)
    if not 0 <= index < count:
        raise BackendUnavailableError(f"GPU index {index} does not exist ({count} GPU(s) found)")
    check(rt, rt.cudaSetDevice(index), f"cudaSetDevice({index})")
    props = check(rt, rt.cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
    name = props.name
    if isinstance(name, bytes):
        name = name.split(b"\0", 1)[0].decode(errors="replace")
    free, total = check(rt, rt.cudaMemGetInfo(), "cudaMemGetInfo")
    return GpuInfo(
        index=index,
        name=str(name).strip(),
        major=int(props.major),
        minor=int(props.minor),
        total_bytes=int(total),
        free_bytes=int(free),
    )


def try_gpu_info(index: int = 0) -> tuple[GpuInfo | None, str | None]:
    """``(info, None)`` when a GPU is usable, else ``(None, reason)``; never raises for a missing GPU."""
    try:
        return gpu_info(index), None
    except BackendUnavailableError as exc:
        return None, str(exc)
