"""The fake CUDA is as unforgiving as a GPU: queued work lands only on synchronisation.

These tests pin the behaviours the runner's tests rely on to catch GPU-only bugs: a host
read of page-locked memory before the stream is synchronised sees the old bytes, an event
that has not completed has no elapsed time, and forbidden operations spoil a capture.
"""

from __future__ import annotations

import ctypes

from tests.support.fakecuda import FakeCuda
from tests.support.fakecuda.types import cudaError_t, cudaMemcpyKind, cudaStreamCaptureMode

H2D, D2H = cudaMemcpyKind.cudaMemcpyHostToDevice, cudaMemcpyKind.cudaMemcpyDeviceToHost


def _bytes(address: int, size: int) -> bytes:
    return bytes((ctypes.c_byte * size).from_address(address))


def test_copies_land_only_when_the_stream_is_synchronised() -> None:
    cuda = FakeCuda()
    rt = cuda.module
    _, stream = rt.cudaStreamCreate()
    _, host_in = rt.cudaMallocHost(4)
    _, device = rt.cudaMalloc(4)
    _, host_out = rt.cudaMallocHost(4)
    ctypes.memmove(host_in, b"face", 4)
    assert rt.cudaMemcpyAsync(device, host_in, 4, H2D, stream)[0] == cudaError_t.cudaSuccess
    assert rt.cudaMemcpyAsync(host_out, device, 4, D2H, stream)[0] == cudaError_t.cudaSuccess
    assert _bytes(host_out, 4) == b"\0\0\0\0"  # read before the sync: stale, as on a GPU
    rt.cudaStreamSynchronize(stream)
    assert _bytes(host_out, 4) == b"face"


def test_elapsed_time_needs_completed_events() -> None:
    rt = FakeCuda().module
    _, stream = rt.cudaStreamCreate()
    _, start = rt.cudaEventCreate()
    _, end = rt.cudaEventCreate()
    assert rt.cudaEventElapsedTime(start, end)[0] == cudaError_t.cudaErrorInvalidResourceHandle  # never recorded
    rt.cudaEventRecord(start, stream)
    rt.cudaEventRecord(end, stream)
    assert rt.cudaEventElapsedTime(start, end) == (cudaError_t.cudaErrorNotReady, None)
    rt.cudaEventSynchronize(end)
    err, ms = rt.cudaEventElapsedTime(start, end)
    assert err == cudaError_t.cudaSuccess and ms >= 0


def test_freeing_waits_for_queued_work() -> None:
    """cudaFreeHost synchronises the device, as CUDA's does: queued copies still complete first."""
    cuda = FakeCuda()
    rt = cuda.module
    _, stream = rt.cudaStreamCreate()
    _, host = rt.cudaMallocHost(4)
    _, device = rt.cudaMalloc(4)
    rt.cudaMemcpyAsync(device, host, 4, H2D, stream)
    assert rt.cudaFreeHost(host)[0] == cudaError_t.cudaSuccess
    assert cuda.streams[int(stream)].pending == []
    assert rt.cudaFree(device)[0] == cudaError_t.cudaSuccess and cuda.outstanding() == []


def test_capture_records_and_a_forbidden_call_spoils_it() -> None:
    cuda = FakeCuda()
    rt = cuda.module
    _, stream = rt.cudaStreamCreate()
    _, host = rt.cudaMallocHost(4)
    _, device = rt.cudaMalloc(4)
    mode = cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
    rt.cudaStreamBeginCapture(stream, mode)
    rt.cudaMemcpyAsync(device, host, 4, H2D, stream)
    assert cuda.streams[int(stream)].pending == []  # recorded into the graph, not queued
    err, graph = rt.cudaStreamEndCapture(stream)
    assert err == cudaError_t.cudaSuccess and len(cuda.graphs[int(graph)]) == 1
    rt.cudaStreamBeginCapture(stream, mode)
    assert rt.cudaStreamSynchronize(stream)[0] == cudaError_t.cudaErrorStreamCaptureUnsupported
    assert rt.cudaStreamEndCapture(stream) == (cudaError_t.cudaErrorStreamCaptureInvalidated, None)
    _, graph_exec = rt.cudaGraphInstantiate(graph, 0)
    ctypes.memmove(host, b"emb!", 4)
    rt.cudaGraphLaunch(graph_exec, stream)
    rt.cudaStreamSynchronize(stream)
    assert _bytes(device, 4) == b"emb!"
