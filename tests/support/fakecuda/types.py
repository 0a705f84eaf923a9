"""cuda-python's error codes, enums and opaque handles, with the values cuda-python has."""

from __future__ import annotations

import enum


class cudaError_t(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInsufficientDriver = 35
    cudaErrorNoDevice = 100
    cudaErrorInvalidDevice = 101
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


MESSAGES = {
    cudaError_t.cudaSuccess: b"no error",
    cudaError_t.cudaErrorInvalidValue: b"invalid argument",
    cudaError_t.cudaErrorMemoryAllocation: b"out of memory",
    cudaError_t.cudaErrorInsufficientDriver: b"CUDA driver version is insufficient for CUDA runtime version",
    cudaError_t.cudaErrorNoDevice: b"no CUDA-capable device is detected",
    cudaError_t.cudaErrorInvalidResourceHandle: b"invalid resource handle",
    cudaError_t.cudaErrorNotReady: b"device not ready",
    cudaError_t.cudaErrorStreamCaptureUnsupported: b"operation not permitted when stream is capturing",
    cudaError_t.cudaErrorStreamCaptureInvalidated: b"operation failed due to a previous error during capture",
}


class _Handle:
    """cudaStream_t / cudaEvent_t / ... style handle: ``int(handle)`` is its address."""

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
