"""``FakeCuda``: the state behind one fake ``cuda.bindings.runtime`` module.

Only what ``arcface_trt.engine.gpu`` and ``arcface_trt.engine.runtime`` call, with the real
call shapes: every function returns a tuple whose first item is a ``cudaError_t``. The fake
is as unforgiving as a GPU where that catches runner bugs:

- work on a stream (copies, engine executions, event records, graph launches) runs only when
  the stream is synchronised or queried, an event waited for, or the device synchronised;
  ``cudaFree``/``cudaFreeHost`` synchronise the device first, as CUDA does;
- ``cudaEventElapsedTime`` on an event that has not completed is ``cudaErrorNotReady``;
- copies must name the right direction (H2D from ``cudaMallocHost`` memory into a
  ``cudaMalloc`` block, D2H the other way) and stay within bounds; freeing with the wrong
  call is an error;
- work on a stream being captured is recorded into the graph, synchronising a capturing
  stream fails, and a capture invalidated by a forbidden operation fails at its end.

``FakeCuda.outstanding()`` lists allocations not freed (leak checks); ``calls`` logs
allocations, copies and graph launches.
"""

from __future__ import annotations

import ctypes
import types
from typing import Any

from tests.support.fakecuda.device import FakeDevice, cudaDeviceProp
from tests.support.fakecuda.event import Event
from tests.support.fakecuda.graph import Graphs
from tests.support.fakecuda.memory import DEVICE, HOST, Memory
from tests.support.fakecuda.stream import Stream, Work
from tests.support.fakecuda.types import (
    MESSAGES,
    cudaError_t,
    cudaEvent_t,
    cudaGraph_t,
    cudaGraphExec_t,
    cudaMemcpyKind,
    cudaStream_t,
    cudaStreamCaptureMode,
)

_DIRECTIONS = {
    cudaMemcpyKind.cudaMemcpyHostToDevice: (HOST, DEVICE),
    cudaMemcpyKind.cudaMemcpyDeviceToHost: (DEVICE, HOST),
    cudaMemcpyKind.cudaMemcpyDeviceToDevice: (DEVICE, DEVICE),
}


class FakeCuda:
    """Devices, driver, memory, streams, events and graphs behind one fake runtime module."""

    def __init__(self, devices: list[FakeDevice] | None = None, driver: bool = True) -> None:
        self.devices = [FakeDevice()] if devices is None else devices
        self.driver = driver
        self.current = 0
        self.memory = Memory()
        self.streams: dict[int, Stream] = {}
        self.events: dict[int, Event] = {}
        self._graphs = Graphs()
        self.calls: list[str] = []
        self.module = self._make_module()

    # -- what the fake TensorRT and the tests use ---------------------------------------------
    @property
    def device(self) -> FakeDevice | None:
        """The current device, or None when there is no driver or no GPU."""
        if not self.driver or not self.devices:
            return None
        return self.devices[self.current]

    @property
    def graphs(self) -> dict[int, list[Work]]:
        """Captured graphs not destroyed."""
        return self._graphs.graphs

    def enqueue(self, stream: Any, work: Work) -> bool:
        """Queue ``work`` on ``stream`` (recorded instead when the stream is capturing); False for no such stream."""
        state = self.streams.get(int(stream))
        if state is None:
            return False
        state.enqueue(work)
        return True

    def capturing(self, stream: Any) -> bool:
        """True while ``stream`` is being captured into a graph."""
        state = self.streams.get(int(stream))
        return state is not None and state.capturing

    def invalidate_capture(self, stream: Any) -> None:
        """Mark the capture on ``stream`` failed (an operation not allowed during capture was attempted)."""
        state = self.streams.get(int(stream))
        if state is not None and state.capturing:
            state.invalidated = True

    def block(self, ptr: int, size: int, kind: str) -> bool:
        """True when [ptr, ptr+size) lies inside one allocation of ``kind``."""
        return self.memory.within(int(ptr), size, kind)

    def outstanding(self) -> list[tuple[str, int]]:
        """Allocations not freed: (kind, size)."""
        return self.memory.outstanding()

    def synchronize_all(self) -> None:
        """Run every queued piece of work (what a device-wide synchronisation does)."""
        for state in self.streams.values():
            if not state.capturing:
                state.run_until()

    # -- the module --------------------------------------------------------------------------
    def _make_module(self) -> types.ModuleType:
        module = types.ModuleType("cuda.bindings.runtime")
        module.__doc__ = "fake cuda.bindings.runtime (tests/support/fakecuda)"
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
            setattr(module, cls.__name__, cls)
        for name in dir(self):
            if name.startswith("cuda"):
                setattr(module, name, getattr(self, name))
        return module

    @staticmethod
    def _ok(*values: Any) -> tuple:
        return (cudaError_t.cudaSuccess, *values)

    def _no_gpu(self) -> cudaError_t | None:
        if not self.driver:
            return cudaError_t.cudaErrorInsufficientDriver
        if not self.devices:
            return cudaError_t.cudaErrorNoDevice
        return None

    # -- device ------------------------------------------------------------------------------
    def cudaGetErrorString(self, error: Any) -> tuple:
        return self._ok(MESSAGES.get(cudaError_t(int(error)), b"unknown error"))

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
        return self._ok(d.free_bytes - self.memory.used(DEVICE), d.total_bytes)

    def cudaRuntimeGetVersion(self) -> tuple:
        return self._ok(12080)

    def cudaDriverGetVersion(self) -> tuple:
        return self._ok(12080) if self.driver else self._ok(0)

    def cudaDeviceSynchronize(self) -> tuple:
        if any(s.capturing for s in self.streams.values()):
            return (cudaError_t.cudaErrorStreamCaptureUnsupported,)
        self.synchronize_all()
        return self._ok()

    # -- memory ------------------------------------------------------------------------------
    def _alloc(self, size: int, kind: str) -> tuple:
        err = self._no_gpu()
        if err is not None:
            return (err, None)
        if size <= 0:
            return (cudaError_t.cudaErrorInvalidValue, None)
        self.calls.append(f"alloc-{kind}")
        return self._ok(self.memory.allocate(size, kind))

    def cudaMalloc(self, size: int) -> tuple:
        return self._alloc(size, DEVICE)

    def cudaMallocHost(self, size: int) -> tuple:
        return self._alloc(size, HOST)

    def _free(self, ptr: int, kind: str) -> tuple:
        self.synchronize_all()  # cudaFree and cudaFreeHost wait for the device, as CUDA's do
        return self._ok() if self.memory.free(int(ptr), kind) else (cudaError_t.cudaErrorInvalidValue,)

    def cudaFree(self, devPtr: int) -> tuple:
        return self._free(devPtr, DEVICE)

    def cudaFreeHost(self, ptr: int) -> tuple:
        return self._free(ptr, HOST)

    def cudaMemcpyAsync(self, dst: int, src: int, count: int, kind: Any, stream: Any) -> tuple:
        if int(kind) not in _DIRECTIONS:
            return (cudaError_t.cudaErrorInvalidValue,)
        src_kind, dst_kind = _DIRECTIONS[cudaMemcpyKind(int(kind))]
        if not (self.block(int(src), count, src_kind) and self.block(int(dst), count, dst_kind)):
            return (cudaError_t.cudaErrorInvalidValue,)
        self.calls.append(f"memcpy-{cudaMemcpyKind(int(kind)).name}")
        if not self.enqueue(stream, lambda: ctypes.memmove(int(dst), int(src), count)):
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        return self._ok()

    # -- streams -----------------------------------------------------------------------------
    def cudaStreamCreate(self) -> tuple:
        err = self._no_gpu()
        if err is not None:
            return (err, None)
        stream = cudaStream_t()
        self.streams[int(stream)] = Stream()
        return self._ok(stream)

    def cudaStreamSynchronize(self, stream: Any) -> tuple:
        state = self.streams.get(int(stream))
        if state is None:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        if state.capturing:
            state.invalidated = True
            return (cudaError_t.cudaErrorStreamCaptureUnsupported,)
        state.run_until()
        return self._ok()

    def cudaStreamQuery(self, stream: Any) -> tuple:
        return self.cudaStreamSynchronize(stream)

    def cudaStreamDestroy(self, stream: Any) -> tuple:
        state = self.streams.pop(int(stream), None)
        if state is None:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        state.run_until()  # work already queued still completes
        return self._ok()

    def cudaStreamBeginCapture(self, stream: Any, mode: Any) -> tuple:
        state = self.streams.get(int(stream))
        if state is None or state.capturing:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        state.run_until()  # work queued before the capture is not part of the graph
        state.capturing, state.captured, state.invalidated = True, [], False
        return self._ok()

    def cudaStreamEndCapture(self, stream: Any) -> tuple:
        state = self.streams.get(int(stream))
        if state is None or not state.capturing:
            return (cudaError_t.cudaErrorInvalidResourceHandle, None)
        work, failed = state.captured, state.invalidated
        state.capturing, state.captured, state.invalidated = False, [], False
        if failed:
            return (cudaError_t.cudaErrorStreamCaptureInvalidated, None)
        graph = cudaGraph_t()
        self._graphs.graphs[int(graph)] = work
        return self._ok(graph)

    # -- events ------------------------------------------------------------------------------
    def cudaEventCreate(self) -> tuple:
        event = cudaEvent_t()
        self.events[int(event)] = Event()
        return self._ok(event)

    def cudaEventRecord(self, event: Any, stream: Any) -> tuple:
        state = self.events.get(int(event))
        if state is None or int(stream) not in self.streams:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)

        def stamp() -> None:
            state.stamp()

        state.stream, state.marker, state.completed_at = int(stream), stamp, None
        self.enqueue(stream, stamp)
        return self._ok()

    def cudaEventSynchronize(self, event: Any) -> tuple:
        state = self.events.get(int(event))
        if state is None:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        stream = self.streams.get(state.stream) if state.stream is not None else None
        if stream is not None and state.completed_at is None:
            stream.run_until(state.marker)  # type: ignore[arg-type]
        return self._ok()

    def cudaEventQuery(self, event: Any) -> tuple:
        return self.cudaEventSynchronize(event)

    def cudaEventElapsedTime(self, start: Any, end: Any) -> tuple:
        a, b = self.events.get(int(start)), self.events.get(int(end))
        if a is None or b is None or a.stream is None or b.stream is None:
            return (cudaError_t.cudaErrorInvalidResourceHandle, None)
        if a.completed_at is None or b.completed_at is None:
            return (cudaError_t.cudaErrorNotReady, None)
        return self._ok((b.completed_at - a.completed_at) * 1000.0)

    def cudaEventDestroy(self, event: Any) -> tuple:
        return self._ok() if self.events.pop(int(event), None) else (cudaError_t.cudaErrorInvalidResourceHandle,)

    # -- graphs ------------------------------------------------------------------------------
    def cudaGraphInstantiate(self, graph: Any, flags: int) -> tuple:
        work = self._graphs.graphs.get(int(graph))
        if work is None:
            return (cudaError_t.cudaErrorInvalidResourceHandle, None)
        graph_exec = cudaGraphExec_t()
        self._graphs.execs[int(graph_exec)] = list(work)
        return self._ok(graph_exec)

    def cudaGraphLaunch(self, graphExec: Any, stream: Any) -> tuple:
        work = self._graphs.execs.get(int(graphExec))
        if work is None or int(stream) not in self.streams:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        self.calls.append("graph-launch")
        for item in work:
            self.enqueue(stream, item)
        return self._ok()

    def cudaGraphDestroy(self, graph: Any) -> tuple:
        found = self._graphs.graphs.pop(int(graph), None) is not None
        return self._ok() if found else (cudaError_t.cudaErrorInvalidResourceHandle,)

    def cudaGraphExecDestroy(self, graphExec: Any) -> tuple:
        found = self._graphs.execs.pop(int(graphExec), None) is not None
        return self._ok() if found else (cudaError_t.cudaErrorInvalidResourceHandle,)
