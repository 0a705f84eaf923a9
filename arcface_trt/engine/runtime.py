"""Run a TensorRT plan: :class:`TrtRunner`.

One runner owns one engine, one execution context and one dedicated CUDA stream. A plan that
travels is loaded as its :class:`LoadOptions` say: a weight-stripped plan is refit from its ONNX
(:mod:`.refit`), a version-compatible one runs its embedded lean runtime or the lean runtime library.
Page-locked host buffers and device buffers are allocated once, for the engine's
max batch; each call copies in asynchronously, sets the input shape, enqueues
``execute_async_v3`` and copies out, all on that stream. Inputs larger than the max
batch are split into chunks; a batch smaller than the profile's min is zero-padded.

For benchmarks: :meth:`TrtRunner.timed_infer` splits a call into H2D / compute /
D2H times measured with CUDA events, :meth:`TrtRunner.compute_only` times the
engine alone (no transfers, optionally replayed from a CUDA graph), and
:attr:`TrtRunner.device_memory_bytes` is the engine's own device memory
(``ICudaEngine.device_memory_size_v2``, present in 10.x and 11.x).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from arcface_trt.engine import gpu, trt_api
from arcface_trt.engine.gpu import cudart
from arcface_trt.engine.refit import refit_engine
from arcface_trt.engine.trt_api import trt
from arcface_trt.errors import BackendUnavailableError, InputError


def _host_array(ptr: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A numpy view of page-locked host memory at ``ptr``."""
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = (ctypes.c_byte * nbytes).from_address(ptr)
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


@dataclass(frozen=True)
class EngineIO:
    """A recognition engine's one input and one output as TensorRT reports them (shapes without the batch)."""

    input_name: str
    output_name: str
    #: The input's shape at the profile's max batch, less the batch dimension.
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_dtype: np.dtype
    output_dtype: np.dtype
    #: The batch dimension of optimization profile 0.
    min_batch: int
    opt_batch: int
    max_batch: int


def engine_io(engine: Any) -> EngineIO:
    """Read the input, the output and profile 0's batch range of a deserialized ``ICudaEngine``."""
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
    if len(inputs) != 1 or len(outputs) != 1:
        raise InputError(f"the engine has inputs {inputs} and outputs {outputs}; a recognition engine has one of each")
    input_name, output_name = inputs[0], outputs[0]
    shapes = engine.get_tensor_profile_shape(input_name, 0)
    min_shape, opt_shape, max_shape = (tuple(int(d) for d in s) for s in shapes)
    output_shape = tuple(int(d) for d in engine.get_tensor_shape(output_name))[1:]
    if any(d < 0 for d in output_shape):
        # Only the batch may be dynamic: buffers are sized once, for the max batch.
        raise InputError(
            f"the engine's output '{output_name}' has dynamic dimensions besides the batch "
            f"({['?' if d < 0 else d for d in output_shape]}); export the model with a fixed embedding size"
        )
    return EngineIO(
        input_name=input_name,
        output_name=output_name,
        input_shape=max_shape[1:],
        output_shape=output_shape,
        input_dtype=_numpy_dtype(engine, input_name),
        output_dtype=_numpy_dtype(engine, output_name),
        min_batch=min_shape[0],
        opt_batch=opt_shape[0],
        max_batch=max_shape[0],
    )


@dataclass(frozen=True)
class LoadOptions:
    """How a plan is loaded, from what its manifest says it is (the default: a plan that loads as it is)."""

    #: A weight-stripped plan: refit from this ONNX (the one it was parsed from) before it runs.
    refit_onnx: Path | None = None
    #: The sha256 that ONNX must have (the manifest's ``parsed_onnx_sha256``); any other file is refused.
    refit_sha256: str | None = None
    #: A version-compatible plan carrying TensorRT's lean runtime: host code from the plan file runs in this
    #: process (NVIDIA: deserialize only trusted plans this way).
    host_code_allowed: bool = False
    #: A version-compatible plan built without its lean runtime: loaded through ``Runtime.load_runtime`` of
    #: this library (libnvinfer_lean.so of the TensorRT that built the plan).
    lean_runtime_library: Path | None = None


def deserialize(
    data: bytes, trt_log: trt_api.TrtLog, where: object, load: LoadOptions = LoadOptions()
) -> tuple[tuple[Any, ...], Any]:
    """``(runtimes, engine)`` of a serialized plan, loaded and refit as ``load`` says; the runtimes outlive the engine.

    TensorRT returns None for a plan of another version or an incompatible GPU, or a damaged
    file: :class:`BackendUnavailableError` names those causes and quotes TensorRT.
    """
    runtime = trt.Runtime(trt_log.trt_logger)
    runtimes: tuple[Any, ...] = (runtime,)
    if load.lean_runtime_library is not None:
        lean = runtime.load_runtime(str(load.lean_runtime_library))
        if lean is None:
            raise BackendUnavailableError(
                f"TensorRT could not load the lean runtime {load.lean_runtime_library} for {where} "
                f"(it must be libnvinfer_lean.so of the TensorRT that built the plan): {trt_log.summary()}"
            )
        # Freed last to first: the lean runtime before the runtime that loaded it.
        runtimes, runtime = (runtime, lean), lean
    if load.host_code_allowed:
        runtime.engine_host_code_allowed = True
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise BackendUnavailableError(
            f"TensorRT {trt_api.version()} could not load {where}: it was most likely built by another "
            "TensorRT version or for another GPU (compute capability), or the file is damaged; rebuild it "
            f"with 'arcface-trt build --force' on this machine. TensorRT said: {trt_log.summary()}"
        )
    if load.refit_onnx is not None:
        refit_engine(engine, load.refit_onnx, load.refit_sha256, trt_log, where)
    return runtimes, engine


def _numpy_dtype(engine: Any, name: str) -> np.dtype:
    """The numpy type of tensor ``name``; a one-line error for types numpy has none of (BF16, FP8, INT4, FP4)."""
    dtype = engine.get_tensor_dtype(name)
    try:
        return np.dtype(trt.nptype(dtype))
    except TypeError:
        raise InputError(
            f"the engine's tensor '{name}' is {dtype.name}, which this runner cannot feed or read "
            "(numpy has no such type): build the engine from a model with FLOAT (or HALF) inputs and outputs"
        ) from None


class TrtRunner:
    """A deserialized engine with its buffers and stream, ready to run batches."""

    def __init__(self, plan: bytes | str | Path, device_index: int = 0, load: LoadOptions = LoadOptions()) -> None:
        self._closed = False
        self._host: list[int] = []
        self._device: list[int] = []
        self._events: list[Any] = []
        self._graphs: dict[int, tuple[Any, Any]] = {}
        self._stream: Any = None
        self.context: Any = None
        self.engine: Any = None
        self.plan_path = None if isinstance(plan, bytes | bytearray) else Path(plan)
        self.trt_version = trt_api.version()
        gpu.device_count()
        gpu.check(cudart.cudaSetDevice(device_index), f"cudaSetDevice({device_index})")
        self.log = trt_api.TrtLog()
        self.load = load
        try:
            self._open(self._plan_bytes(plan))
        except BaseException:
            self.close()
            raise

    def _plan_bytes(self, plan: bytes | str | Path) -> bytes:
        if isinstance(plan, bytes | bytearray):
            return bytes(plan)
        try:
            return Path(plan).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read engine plan {plan}: {exc.strerror}") from None

    def _open(self, data: bytes) -> None:
        self.runtime, self.engine = deserialize(data, self.log, self.plan_path or "the engine plan", self.load)
        engine = self.engine
        self.io = engine_io(engine)
        self.input_name, self.output_name = self.io.input_name, self.io.output_name
        self.min_batch, self.opt_batch, self.max_batch = self.io.min_batch, self.io.opt_batch, self.io.max_batch
        self.input_shape, self.output_shape = self.io.input_shape, self.io.output_shape
        self.input_dtype, self.output_dtype = self.io.input_dtype, self.io.output_dtype

        self.context = engine.create_execution_context()
        if self.context is None:
            raise BackendUnavailableError(f"TensorRT could not create an execution context: {self.log.summary()}")
        self._stream = gpu.check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._stream_handle = int(self._stream)
        self._events = [gpu.check(cudart.cudaEventCreate(), "cudaEventCreate") for _ in range(4)]

        in_full = (self.max_batch, *self.input_shape)
        out_full = (self.max_batch, *self.output_shape)
        self._in_bytes = int(np.prod(self.input_shape)) * self.input_dtype.itemsize
        self._out_bytes = int(np.prod(self.output_shape)) * self.output_dtype.itemsize
        h_in = self._malloc_host(self._in_bytes * self.max_batch)
        h_out = self._malloc_host(self._out_bytes * self.max_batch)
        self._h_in_ptr, self._h_out_ptr = h_in, h_out
        self._h_in = _host_array(h_in, in_full, self.input_dtype)
        self._h_out = _host_array(h_out, out_full, self.output_dtype)
        self._d_in = self._malloc_device(self._in_bytes * self.max_batch)
        self._d_out = self._malloc_device(self._out_bytes * self.max_batch)
        for name, ptr in ((self.input_name, self._d_in), (self.output_name, self._d_out)):
            if not self.context.set_tensor_address(name, ptr):
                raise BackendUnavailableError(f"TensorRT refused the address of tensor '{name}': {self.log.summary()}")
        self._batch: int | None = None

    def _malloc_host(self, nbytes: int) -> int:
        ptr = int(gpu.check(cudart.cudaMallocHost(nbytes), f"cudaMallocHost({nbytes})"))
        self._host.append(ptr)
        return ptr

    def _malloc_device(self, nbytes: int) -> int:
        ptr = int(gpu.check(cudart.cudaMalloc(nbytes), f"cudaMalloc({nbytes})"))
        self._device.append(ptr)
        return ptr

    # -- properties --------------------------------------------------------------------------
    @property
    def device_memory_bytes(self) -> int:
        """Device memory the engine's execution context needs (``device_memory_size_v2``)."""
        return int(self.engine.device_memory_size_v2)

    @property
    def buffer_bytes(self) -> int:
        """Device bytes of this runner's own input/output buffers (max batch)."""
        return (self._in_bytes + self._out_bytes) * self.max_batch

    # -- running -----------------------------------------------------------------------------
    def _ensure_open(self) -> None:
        if self._closed:
            raise InputError("this TrtRunner is closed")

    def _set_batch(self, n: int) -> None:
        if n == self._batch:
            return
        if not self.context.set_input_shape(self.input_name, (n, *self.input_shape)):
            raise InputError(
                f"TensorRT refused batch {n} (engine profile {self.min_batch}..{self.max_batch}): {self.log.summary()}"
            )
        self._batch = n

    def _record(self, index: int) -> None:
        gpu.check(cudart.cudaEventRecord(self._events[index], self._stream), "cudaEventRecord")

    def _elapsed(self, start: int, end: int) -> float:
        return float(
            gpu.check(cudart.cudaEventElapsedTime(self._events[start], self._events[end]), "cudaEventElapsedTime")
        )

    def _execute(self) -> None:
        if not self.context.execute_async_v3(self._stream_handle):
            raise BackendUnavailableError(f"TensorRT execute_async_v3 failed: {self.log.summary()}")

    def _sync(self) -> None:
        gpu.check(cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")

    def _check_batch(self, batch: np.ndarray) -> np.ndarray:
        self._ensure_open()
        batch = np.ascontiguousarray(batch, dtype=self.input_dtype)
        if batch.ndim != 1 + len(self.input_shape) or tuple(batch.shape[1:]) != self.input_shape:
            raise InputError(
                f"the engine takes batches of shape (N, {', '.join(map(str, self.input_shape))}), got {batch.shape}"
            )
        return batch

    def _run_chunk(self, chunk: np.ndarray, times: dict[str, float] | None) -> np.ndarray:
        n = len(chunk)
        run_n = max(n, self.min_batch)
        self._h_in[:n] = chunk
        if run_n > n:
            self._h_in[n:run_n] = 0
        self._set_batch(run_n)
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        if times is not None:
            self._record(0)
        gpu.check(
            cudart.cudaMemcpyAsync(self._d_in, self._h_in_ptr, run_n * self._in_bytes, h2d, self._stream),
            "cudaMemcpyAsync H2D",
        )
        if times is not None:
            self._record(1)
        self._execute()
        if times is not None:
            self._record(2)
        gpu.check(
            cudart.cudaMemcpyAsync(self._h_out_ptr, self._d_out, run_n * self._out_bytes, d2h, self._stream),
            "cudaMemcpyAsync D2H",
        )
        if times is not None:
            self._record(3)
        self._sync()
        if times is not None:
            times["h2d_ms"] += self._elapsed(0, 1)
            times["compute_ms"] += self._elapsed(1, 2)
            times["d2h_ms"] += self._elapsed(2, 3)
        return self._h_out[:n].copy()

    def _infer(self, batch: np.ndarray, times: dict[str, float] | None) -> np.ndarray:
        batch = self._check_batch(batch)
        if len(batch) == 0:
            return np.zeros((0, *self.output_shape), dtype=self.output_dtype)
        parts = [self._run_chunk(batch[i : i + self.max_batch], times) for i in range(0, len(batch), self.max_batch)]
        return np.concatenate(parts, axis=0)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run a preprocessed ``(N, C, H, W)`` batch (any N); raw outputs ``(N, D)``."""
        return self._infer(batch, None)

    def timed_infer(self, batch: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """:meth:`infer` plus ``h2d_ms``, ``compute_ms``, ``d2h_ms`` from CUDA events (summed over chunks)."""
        times = {"h2d_ms": 0.0, "compute_ms": 0.0, "d2h_ms": 0.0}
        out = self._infer(batch, times)
        return out, times

    def _check_size(self, batch_size: int) -> None:
        self._ensure_open()
        if not self.min_batch <= batch_size <= self.max_batch:
            raise InputError(
                f"batch size {batch_size} is outside the engine profile {self.min_batch}..{self.max_batch}"
            )

    def compute_only(self, batch_size: int, cuda_graph: bool = False) -> float:
        """Milliseconds of one engine execution at ``batch_size``, no transfers (CUDA events).

        The device input holds whatever the last call left there. With ``cuda_graph``
        the execution is captured once per batch size and replayed with ``cudaGraphLaunch``.
        """
        self._check_size(batch_size)
        self._set_batch(batch_size)
        if cuda_graph:
            graph_exec = self._graph(batch_size)
            self._record(1)
            gpu.check(cudart.cudaGraphLaunch(graph_exec, self._stream), "cudaGraphLaunch")
        else:
            self._record(1)
            self._execute()
        self._record(2)
        self._sync()
        return self._elapsed(1, 2)

    def _graph(self, batch_size: int) -> Any:
        """Capture (once) the execution at ``batch_size`` into an instantiated CUDA graph."""
        if batch_size in self._graphs:
            return self._graphs[batch_size][1]
        # One ordinary run first: after a shape change TensorRT does shape-dependent work on the
        # next enqueue, which cannot be captured (NVIDIA: call enqueueV3 once before capturing).
        self._execute()
        self._sync()
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        gpu.check(cudart.cudaStreamBeginCapture(self._stream, mode), "cudaStreamBeginCapture")
        ok = self.context.execute_async_v3(self._stream_handle)
        # The capture is ended whatever happened, so the stream is usable again.
        err, graph = cudart.cudaStreamEndCapture(self._stream)
        if not ok or int(err) != gpu.CUDA_SUCCESS:
            if int(err) == gpu.CUDA_SUCCESS:
                cudart.cudaGraphDestroy(graph)
            raise BackendUnavailableError(
                f"TensorRT execution could not be captured in a CUDA graph ({gpu.error_string(err)}): "
                f"{self.log.summary()}"
            )
        graph_exec = gpu.check(cudart.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        self._graphs[batch_size] = (graph, graph_exec)
        return graph_exec

    # -- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        """Free the buffers, graphs, events and stream; release the engine. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        # Only what was created is freed: a runner that failed early calls no CUDA function here.
        for graph, graph_exec in self._graphs.values():
            cudart.cudaGraphExecDestroy(graph_exec)
            cudart.cudaGraphDestroy(graph)
        if self._stream is not None:
            cudart.cudaStreamSynchronize(self._stream)
        for ptr in self._device:
            cudart.cudaFree(ptr)
        for ptr in self._host:
            cudart.cudaFreeHost(ptr)
        for event in self._events:
            cudart.cudaEventDestroy(event)
        if self._stream is not None:
            cudart.cudaStreamDestroy(self._stream)
        self._graphs, self._device, self._host, self._events, self._stream = {}, [], [], [], None
        # The host views point into freed page-locked memory: drop them.
        self._h_in = self._h_out = None  # type: ignore[assignment]
        # Context before engine before runtime: the order TensorRT requires.
        self.context = None
        self.engine = None
        self.runtime = None

    def __enter__(self) -> TrtRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
