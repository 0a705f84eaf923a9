"""GPU facts, in one module: device count, name, compute capability, memory, CUDA and driver versions.

cuda-python 13.x imports as ``from cuda.bindings import runtime``; 12.x also offered
``from cuda import cudart`` (deprecated in 12.9, gone in 13): :data:`cudart` is whichever
is importable. Every call returns a tuple whose first item is the error code. With no
driver, ``cudaGetDeviceCount`` returns ``cudaErrorInsufficientDriver`` (35); with a driver
but no GPU, ``cudaErrorNoDevice`` (100). Each case is a specific
:class:`BackendUnavailableError`. NVML (``pynvml``, from nvidia-ml-py) adds the driver
version and per-process memory where it is installed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from arcface_trt.errors import BackendUnavailableError, describe
from arcface_trt.lazy import available, lazy_import, require

cudart = lazy_import("cuda.bindings.runtime", "cuda.cudart")

CUDA_SUCCESS = 0
CUDA_ERROR_INSUFFICIENT_DRIVER = 35
CUDA_ERROR_NO_DEVICE = 100
MIB = 1024 * 1024


def cuda_python_installed() -> bool:
    """True when cuda-python's runtime bindings import here."""
    return available("cuda.bindings.runtime", "cuda.cudart")


def error_string(err: Any) -> str:
    """``cudaGetErrorString`` as text, with the numeric code."""
    try:
        _, text = cudart.cudaGetErrorString(err)
        text = text.decode() if isinstance(text, bytes) else str(text)
    except Exception:  # a failing error lookup must not hide the original error
        text = "unknown CUDA error"
    return f"{text} (CUDA error {int(err)})"


def check(result: Any, what: str) -> Any:
    """Unpack a cuda-python result tuple; raise :class:`BackendUnavailableError` on a CUDA error.

    Returns None, the single value, or a tuple of the values after the error code.
    """
    if not isinstance(result, tuple):
        result = (result,)
    err, values = result[0], result[1:]
    if int(err) != CUDA_SUCCESS:
        raise BackendUnavailableError(f"{what} failed: {error_string(err)}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def device_count() -> int:
    """Number of CUDA GPUs; :class:`BackendUnavailableError` naming no driver / no GPU."""
    err, count = cudart.cudaGetDeviceCount()
    code = int(err)
    if code == CUDA_ERROR_INSUFFICIENT_DRIVER:
        raise BackendUnavailableError(
            "no usable NVIDIA driver (cudaGetDeviceCount: cudaErrorInsufficientDriver, 35): "
            "TensorRT needs an NVIDIA GPU with a driver recent enough for the installed CUDA runtime"
        )
    if code == CUDA_ERROR_NO_DEVICE or (code == CUDA_SUCCESS and not count):
        raise BackendUnavailableError("no CUDA GPU found (the NVIDIA driver is loaded but reports no device)")
    if code != CUDA_SUCCESS:
        raise BackendUnavailableError(f"cannot count CUDA GPUs: {error_string(err)}")
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


def gpu_info(index: int = 0) -> GpuInfo:
    """Facts about GPU ``index``; :class:`BackendUnavailableError` when there is none."""
    count = device_count()
    if not 0 <= index < count:
        raise BackendUnavailableError(f"GPU index {index} does not exist ({count} GPU(s) found)")
    check(cudart.cudaSetDevice(index), f"cudaSetDevice({index})")
    props = check(cudart.cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
    name = props.name
    if isinstance(name, bytes):
        name = name.split(b"\0", 1)[0].decode(errors="replace")
    free, total = check(cudart.cudaMemGetInfo(), "cudaMemGetInfo")
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


def _cuda_version(value: int) -> str:
    # CUDA encodes versions as 1000 * major + 10 * minor.
    return f"{value // 1000}.{(value % 1000) // 10}"


def describe_gpus() -> dict[str, Any]:
    """CUDA runtime/driver versions and each GPU's name, compute capability and memory (for reports)."""
    out: dict[str, Any] = {"cuda_python": False, "cuda_runtime": None, "cuda_driver": None, "gpus": [], "error": None}
    try:
        err, version = cudart.cudaRuntimeGetVersion()
        out["cuda_python"] = True
        if int(err) == 0:
            out["cuda_runtime"] = _cuda_version(int(version))
        err, version = cudart.cudaDriverGetVersion()
        if int(err) == 0 and int(version) > 0:
            out["cuda_driver"] = _cuda_version(int(version))
        count = device_count()
        for index in range(count):
            info = gpu_info(index)
            out["gpus"].append(
                {"index": index, "name": info.name, "sm_arch": info.sm_arch, "memory_mb": info.total_bytes // MIB}
            )
        if count > 1:
            cudart.cudaSetDevice(0)  # gpu_info selects each device in turn; leave the default one current
    except BackendUnavailableError as exc:
        out["error"] = str(exc)
    except Exception as exc:  # no driver: some bindings raise instead of returning an error code
        out["error"] = describe(exc)
    out["nvidia_driver"] = nvidia_driver_version()
    return out


def device_memory_used_mb() -> float | None:
    """Memory used on the current device by every process (MiB), via ``cudaMemGetInfo``; None without it."""
    try:
        err, free, total = cudart.cudaMemGetInfo()
    except Exception:  # not installed (BackendUnavailableError), or no driver: the bindings raise
        return None
    if int(err) != 0:
        return None
    return (total - free) / MIB


def nvml() -> Any | None:
    """NVML (``pynvml``) initialised, or None when it is not installed or finds no driver."""
    try:
        module = require("pynvml")
        module.nvmlInit()
    except Exception:  # not installed, or no driver: NVMLError_LibraryNotFound / DriverNotLoaded
        return None
    return module


def nvidia_driver_version() -> str | None:
    """The NVIDIA driver version string from NVML, or None."""
    module = nvml()
    if module is None:
        return None
    try:
        version = module.nvmlSystemGetDriverVersion()
    except Exception:  # NVMLError subclasses
        return None
    return version.decode() if isinstance(version, bytes) else str(version)
