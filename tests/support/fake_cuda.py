"""A strict fake of cuda-python's runtime module (``cuda.bindings.runtime``) for tests.

Only what ``arcface_trt.engine.gpu`` and ``arcface_trt.engine.runtime`` call, with the
real call shapes: every function returns a tuple whose first item is a
``cudaError_t``. "Device" memory is host memory (so the fake TensorRT engine can
compute on it), but the fake is stricter than CUDA where it catches runner bugs:

- copies must name the right direction: H2D copies go from page-locked host memory
  (``cudaMallocHost``) into a ``cudaMalloc`` block, D2H the other way, within bounds;
- freeing with the wrong call (``cudaFree`` on host memory) is an error;
- work on a stream being captured is recorded into the graph instead of run, and
  ``cudaStreamSynchronize`` on a capturing stream fails, as on a GPU.

Work runs at once (the fake has no real asynchrony), so CUDA events time real CPU
work. ``FakeCuda.outstanding()`` lists allocations not freed (leak checks).
"""

from __future__ import annotations

import ctypes
import enum
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class cudaError_t(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInsufficientDriver = 35
    cudaErrorInvalidDevice = 101
    cudaErrorNoDevice = 100
    cudaErrorInvalidResourceHandle = 400
    cudaErrorNotReady = 600
    cudaErrorStreamCaptureUnsupported = 900
    cudaErrorStreamCaptureInvalidated = 901


class cudaMemcpyKind(enum.IntEnum):
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2
    cudaMemcpyDeviceToDevice = 3
    cudaMemcpyDefault = 4


class cudaStreamCaptureMode(enum.IntEnum):
    cudaStreamCaptureModeGlobal = 0
    cudaStreamCaptureModeThreadLocal = 1
    cudaStreamCaptureModeRelaxed = 2


_MESSAGES = {
    cudaError_t.cudaSuccess: b"no error",
    cudaError_t.cudaErrorInvalidValue: b"invalid argument",
    cudaError_t.cudaErrorMemoryAllocation: b"out of memory",
    cudaError_t.cudaErrorInsufficientDriver: b"CUDA driver version is insufficient for CUDA runtime version",
    cudaError_t.cudaErrorNoDevice: b"no CUDA-capable device is detected",
    cudaError_t.cudaErrorInvalidResourceHandle: b"invalid resource handle",
}


class _Handle:
    """cudaStream_t / cudaEvent_t / cudaGraph_t style handle: ``int(handle)`` is its address."""

    _next = 0x1000

    def __init__(self) -> None:
        _Handle._next += 0x10
        self._id = _Handle._next

    def __int__(self) -> int:
        return self._id

    def getPtr(self) -> int:
        return self._id


class cudaStream_t(_Handle):
    pass


class cudaEvent_t(_Handle):
    pass


class cudaGraph_t(_Handle):
    pass


class cudaGraphExec_t(_Handle):
    pass


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


@dataclass
class _Stream:
    capturing: bool = False
    captured: list[Callable[[], None]] = field(default_factory=list)
    invalidated: bool = False


class FakeCuda:
    """State behind one fake runtime module: devices, driver, memory, streams, events, graphs."""

    def __init__(self, devices: list[FakeDevice] | None = None, driver: bool = True) -> None:
        self.devices = [FakeDevice()] if devices is None else devices
        self.driver = driver
        self.current = 0
        self.memory: dict[int, tuple[str, int, Any]] = {}  # address -> (kind, size, buffer)
        self.streams: dict[int, _Stream] = {}
        self.events: dict[int, float | None] = {}
        self.graphs: dict[int, list[Callable[[], None]]] = {}
        self.execs: dict[int, list[Callable[[], None]]] = {}
        self.calls: list[str] = []
        self.module = self._make_module()

    # -- helpers used by the fake TensorRT -------------------------------------------------
    @property
    def device(self) -> FakeDevice | None:
        """The current device, or None when there is no driver or no GPU."""
        if not self.driver or not self.devices:
            return None
        return self.devices[self.current]

    def enqueue(self, stream: int, work: Callable[[], None]) -> bool:
        """Run ``work`` now, or record it when ``stream`` is being captured."""
        state = self.streams.get(int(stream))
        if state is None:
            return False
        if state.capturing:
            state.captured.append(work)
        else:
            work()
        return True

    def block(self, ptr: int, size: int, kind: str) -> bool:
        """True when [ptr, ptr+size) lies inside one allocation of ``kind``."""
        for base, (k, n, _) in self.memory.items():
            if base <= ptr and ptr + size <= base + n:
                return k == kind
        return False

    def outstanding(self) -> list[tuple[str, int]]:
        """Allocations not freed: (kind, size)."""
        return [(k, n) for k, n, _ in self.memory.values()]

    # -- the module ------------------------------------------------------------------------
    def _make_module(self) -> types.ModuleType:
        m = types.ModuleType("cuda.bindings.runtime")
        m.__doc__ = "fake cuda.bindings.runtime (tests/support/fake_cuda.py)"
        for cls in (
            cudaError_t,
            cudaMemcpyKind,
            cudaStreamCaptureMode,
            cudaStream_t,
            cudaEvent_t,
            cudaGraph_t,
            cudaGraphExec_t,
            cudaDeviceProp,
        ):
            setattr(m, cls.__name__, cls)
        for name in dir(self):
            if name.startswith("cuda"):
                setattr(m, name, getattr(self, name))
        return m

    def _ok(self, *values: Any) -> tuple:
        return (cudaError_t.cudaSuccess, *values)

    def _no_gpu(self) -> cudaError_t | None:
        if not self.driver:
            return cudaError_t.cudaErrorInsufficientDriver
        if not self.devices:
            return cudaError_t.cudaErrorNoDevice
        return None

    def cudaGetErrorString(self, error: Any) -> tuple:
        return self._ok(_MESSAGES.get(cudaError_t(int(error)), b"unknown error"))

    def cudaGetDeviceCount(self) -> tuple:
        err = self._no_gpu()
        if err is not None:
            return (err, None) if err == cudaError_t.cudaErrorInsufficientDriver else (err, 0)
        return self._ok(len(self.devices))

    def cudaSetDevice(self, device: int) -> tuple:
        err = self._no_gpu()
        if err is not None:
            return (err,)
        if not 0 <= device < len(self.devices):
            return (cudaError_t.cudaErrorInvalidDevice,)
        self.current = device
        return self._ok()

    def cudaGetDeviceProperties(self, device: int) -> tuple:
        err = self._no_gpu()
        if err is not None:
            return (err, None)
        d = self.devices[device]
        return self._ok(cudaDeviceProp(d.name.encode().ljust(256, b"\0"), d.major, d.minor, d.total_bytes))

    def cudaMemGetInfo(self) -> tuple:
        err = self._no_gpu()
        if err is not None:
            return (err, None, None)
        d = self.devices[self.current]
        used = sum(n for k, n, _ in self.memory.values() if k == "device")
        return self._ok(d.free_bytes - used, d.total_bytes)

    def cudaRuntimeGetVersion(self) -> tuple:
        return self._ok(12080)

    def cudaDriverGetVersion(self) -> tuple:
        return self._ok(12080) if self.driver else self._ok(0)

    def _alloc(self, size: int, kind: str) -> tuple:
        err = self._no_gpu()
        if err is not None:
            return (err, None)
        if size <= 0:
            return (cudaError_t.cudaErrorInvalidValue, None)
        buf = ctypes.create_string_buffer(size)
        ptr = ctypes.addressof(buf)
        self.memory[ptr] = (kind, size, buf)
        self.calls.append(f"alloc-{kind}")
        return self._ok(ptr)

    def cudaMalloc(self, size: int) -> tuple:
        return self._alloc(size, "device")

    def cudaMallocHost(self, size: int) -> tuple:
        return self._alloc(size, "host")

    def _free(self, ptr: int, kind: str) -> tuple:
        entry = self.memory.get(int(ptr))
        if entry is None or entry[0] != kind:
            return (cudaError_t.cudaErrorInvalidValue,)
        del self.memory[int(ptr)]
        return self._ok()

    def cudaFree(self, devPtr: int) -> tuple:
        return self._free(devPtr, "device")

    def cudaFreeHost(self, ptr: int) -> tuple:
        return self._free(ptr, "host")

    def cudaMemcpyAsync(self, dst: int, src: int, count: int, kind: Any, stream: Any) -> tuple:
        directions = {
            cudaMemcpyKind.cudaMemcpyHostToDevice: ("host", "device"),
            cudaMemcpyKind.cudaMemcpyDeviceToHost: ("device", "host"),
            cudaMemcpyKind.cudaMemcpyDeviceToDevice: ("device", "device"),
        }
        if int(kind) not in directions:
            return (cudaError_t.cudaErrorInvalidValue,)
        src_kind, dst_kind = directions[cudaMemcpyKind(int(kind))]
        if not (self.block(int(src), count, src_kind) and self.block(int(dst), count, dst_kind)):
            return (cudaError_t.cudaErrorInvalidValue,)
        self.calls.append(f"memcpy-{cudaMemcpyKind(int(kind)).name}")
        if not self.enqueue(stream, lambda: ctypes.memmove(int(dst), int(src), count)):
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        return self._ok()

    def cudaStreamCreate(self) -> tuple:
        err = self._no_gpu()
        if err is not None:
            return (err, None)
        stream = cudaStream_t()
        self.streams[int(stream)] = _Stream()
        return self._ok(stream)

    def cudaStreamSynchronize(self, stream: Any) -> tuple:
        state = self.streams.get(int(stream))
        if state is None:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        if state.capturing:
            return (cudaError_t.cudaErrorStreamCaptureUnsupported,)
        return self._ok()

    def cudaStreamDestroy(self, stream: Any) -> tuple:
        return self._ok() if self.streams.pop(int(stream), None) else (cudaError_t.cudaErrorInvalidResourceHandle,)

    def cudaEventCreate(self) -> tuple:
        event = cudaEvent_t()
        self.events[int(event)] = None
        return self._ok(event)

    def cudaEventRecord(self, event: Any, stream: Any) -> tuple:
        if int(event) not in self.events:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)

        def stamp() -> None:
            self.events[int(event)] = time.perf_counter()

        return self._ok() if self.enqueue(stream, stamp) else (cudaError_t.cudaErrorInvalidResourceHandle,)

    def cudaEventSynchronize(self, event: Any) -> tuple:
        return self._ok() if int(event) in self.events else (cudaError_t.cudaErrorInvalidResourceHandle,)

    def cudaEventElapsedTime(self, start: Any, end: Any) -> tuple:
        a, b = self.events.get(int(start)), self.events.get(int(end))
        if a is None or b is None:
            return (cudaError_t.cudaErrorInvalidResourceHandle, None)
        return self._ok((b - a) * 1000.0)

    def cudaEventDestroy(self, event: Any) -> tuple:
        return self._ok() if self.events.pop(int(event), 0) != 0 else (cudaError_t.cudaErrorInvalidResourceHandle,)

    def cudaStreamBeginCapture(self, stream: Any, mode: Any) -> tuple:
        state = self.streams.get(int(stream))
        if state is None or state.capturing:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        state.capturing, state.captured = True, []
        return self._ok()

    def cudaStreamEndCapture(self, stream: Any) -> tuple:
        state = self.streams.get(int(stream))
        if state is None or not state.capturing:
            return (cudaError_t.cudaErrorInvalidResourceHandle, None)
        graph = cudaGraph_t()
        self.graphs[int(graph)] = state.captured
        state.capturing, state.captured = False, []
        return self._ok(graph)

    def cudaGraphInstantiate(self, graph: Any, flags: int) -> tuple:
        work = self.graphs.get(int(graph))
        if work is None:
            return (cudaError_t.cudaErrorInvalidResourceHandle, None)
        graph_exec = cudaGraphExec_t()
        self.execs[int(graph_exec)] = list(work)
        return self._ok(graph_exec)

    def cudaGraphLaunch(self, graphExec: Any, stream: Any) -> tuple:
        work = self.execs.get(int(graphExec))
        if work is None:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        self.calls.append("graph-launch")
        for item in work:
            self.enqueue(stream, item)
        return self._ok()

    def cudaGraphDestroy(self, graph: Any) -> tuple:
        return (
            self._ok()
            if self.graphs.pop(int(graph), None) is not None
            else (cudaError_t.cudaErrorInvalidResourceHandle,)
        )

    def cudaGraphExecDestroy(self, graphExec: Any) -> tuple:
        return (
            self._ok()
            if self.execs.pop(int(graphExec), None) is not None
            else (cudaError_t.cudaErrorInvalidResourceHandle,)
        )
