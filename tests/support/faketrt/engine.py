"""``ICudaEngine`` and ``IExecutionContext``: a fake plan, run with ONNX Runtime on the CPU.

The engine's layers (``num_layers``, ``create_engine_inspector``) are the records the builder
made (:mod:`.layers`), read through :mod:`.inspector`. A weight-stripped engine (``STRIP_PLAN``)
refuses to create an execution context until a :class:`~tests.support.faketrt.refitter.Refitter`
has filled in every stripped weight.

The engine runs the ONNX the plan carries as the build configured it: with TF32 left on, the
inputs of an fp32 engine are rounded to TF32's 10-bit mantissa (what TF32 tensor cores do to
matrix inputs); with 10.x's FP16 flag, the network runs converted to fp16 (inputs and
outputs stay fp32). ``execute_async_v3`` only queues the work on the stream: it reads the
device input when the stream runs it. On a stream being captured into a CUDA graph it
refuses, and spoils the capture, when the input shape changed since the last ordinary
``execute_async_v3`` (TensorRT does shape-dependent work on the first enqueue after a shape
change, which cannot be captured: NVIDIA documents running enqueueV3 once before capture).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from tests.support.faketrt.logger import log
from tests.support.faketrt.network import Dims
from tests.support.faketrt.refitter import fill_weights, refittable_names
from tests.support.faketrt.strict import Strict

NUMPY_TYPES = {
    "FLOAT": np.float32,
    "HALF": np.float16,
    "INT8": np.int8,
    "INT32": np.int32,
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "INT64": np.int64,
}
DEVICE_MEMORY = 7 << 20


def round_to_tf32(x: np.ndarray) -> np.ndarray:
    """``x`` with its float32 mantissas rounded to TF32's 10 bits (round to nearest)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)
    return rounded.view(np.float32)


class ICudaEngine(Strict):
    """A deserialized fake plan; a weight-stripped one runs only once refit (:mod:`.refitter`)."""

    def __init__(self, header: dict, onnx_bytes: bytes, logger: Any) -> None:
        import onnx
        from onnx import helper

        self._h, self._logger = header, logger
        flags = set(header["flags"])
        self._tf32 = "TF32" in flags
        self._onnx = onnx_bytes
        self._missing = set(header.get("stripped", []))
        model = onnx.load_from_string(onnx_bytes)
        refittable = set(refittable_names(model))
        #: Refittable weight -> (dims, numpy type): what a refit must supply.
        self._weight_specs = {
            init.name: (tuple(init.dims), np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type)))
            for init in model.graph.initializer
            if init.name in refittable
        }
        self._session: Any = None if self._missing else self._make_session(onnx_bytes)

    def _make_session(self, onnx_bytes: bytes) -> Any:
        import onnxruntime as ort

        if "FP16" in self._h["flags"] and not self._h["strongly_typed"]:
            onnx_bytes = _to_fp16(onnx_bytes)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])

    def _refit(self, weights: dict[str, np.ndarray]) -> None:
        """Take refit weights (the Refitter checked that none is missing)."""
        self._onnx = fill_weights(self._onnx, weights)
        self._missing = set()
        self._session = self._make_session(self._onnx)

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self._tf32 and x.dtype == np.float32:
            x = round_to_tf32(x)
        return self._session.run(None, {self._h["input"]: x})[0]

    @property
    def refittable(self) -> bool:
        return bool(self._h.get("refittable", False))

    @property
    def num_io_tensors(self) -> int:
        return 2

    @property
    def num_optimization_profiles(self) -> int:
        return 1

    @property
    def hardware_compatibility_level(self) -> Any:
        return getattr(self._env.enum("HardwareCompatibilityLevel"), self._h["hw"])

    @property
    def device_memory_size_v2(self) -> int:
        return DEVICE_MEMORY

    @property
    def num_layers(self) -> int:
        return len(self._h["layers"])

    @property
    def profiling_verbosity(self) -> Any:
        return getattr(self._env.enum("ProfilingVerbosity"), self._h["profiling_verbosity"])

    def create_engine_inspector(self) -> Any:
        return self._env.new("EngineInspector", self)

    def get_tensor_name(self, index: int) -> str:
        return (self._h["input"], self._h["output"])[index]

    def get_tensor_mode(self, name: str) -> Any:
        mode = self._env.enum("TensorIOMode")
        return {self._h["input"]: mode.INPUT, self._h["output"]: mode.OUTPUT}.get(name, mode.NONE)

    def get_tensor_dtype(self, name: str) -> Any:
        key = "input_dtype" if name == self._h["input"] else "output_dtype"
        return getattr(self._env.enum("DataType"), self._h[key])

    def get_tensor_shape(self, name: str) -> Dims:
        if name == self._h["input"]:
            lo, _, hi = self._h["profile"][name]
            return Dims(-1 if a != b else a for a, b in zip(lo, hi, strict=True))
        return Dims(self._h["output_shape"])

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Dims]:
        if name not in self._h["profile"] or profile_index != 0:
            log(self._env, self._logger, "ERROR", f"getProfileShape: {name} has no profile {profile_index}")
            return []
        return [Dims(s) for s in self._h["profile"][name]]

    def create_execution_context(self, strategy: Any = None) -> Any:
        if self._missing:
            missing = len(self._missing)
            log(self._env, self._logger, "ERROR", "ICudaEngine::createExecutionContext: Error Code 3: API Usage Error "
                f"(the engine's weights were stripped and are not refit yet: {missing} weights missing)")  # fmt: skip
            return None
        return self._env.new("IExecutionContext", self)


def _to_fp16(onnx_bytes: bytes) -> bytes:
    """The network in fp16 with fp32 inputs and outputs: what 10.x's FP16 flag lets the builder choose."""
    import warnings

    import onnx
    from onnxconverter_common import float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        converted = float16.convert_float_to_float16(onnx.load_from_string(onnx_bytes), keep_io_types=True)
    return converted.SerializeToString()


class IExecutionContext(Strict):
    """Input shape, tensor addresses, and enqueueing the engine on a stream."""

    def __init__(self, engine: ICudaEngine) -> None:
        self._engine = engine
        self._shape: tuple | None = None
        #: The input shape of the last ordinary (not captured) enqueue.
        self._warm_shape: tuple | None = None
        self._addresses: dict[str, int] = {}

    @property
    def engine(self) -> ICudaEngine:
        return self._engine

    def _error(self, message: str) -> bool:
        log(self._env, self._engine._logger, "ERROR", message)
        return False

    def set_input_shape(self, name: str, shape: Any) -> bool:
        h = self._engine._h
        if name != h["input"]:
            return self._error(
                f"IExecutionContext::setInputShape: Error Code 3: API Usage Error ({name} is not an input)"
            )
        lo, _, hi = h["profile"][name]
        shape = tuple(int(x) for x in shape)
        if len(shape) != len(lo) or any(not a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
            return self._error(
                "IExecutionContext::setInputShape: Error Code 3: API Usage Error "
                f"(Given invalid tensor shape {list(shape)} for {name}: profile {lo}..{hi})"
            )
        self._shape = shape
        return True

    def set_tensor_address(self, name: str, memory: int) -> bool:
        if name not in (self._engine._h["input"], self._engine._h["output"]) or not memory:
            return self._error(f"IExecutionContext::setTensorAddress: Error Code 3 ({name})")
        self._addresses[name] = int(memory)
        return True

    def get_tensor_address(self, name: str) -> int:
        return self._addresses.get(name, 0)

    def get_tensor_shape(self, name: str) -> Dims:
        if name == self._engine._h["input"]:
            return Dims(self._shape or ())
        out = list(self._engine._h["output_shape"])
        if self._shape is not None:
            out[0] = self._shape[0]
        return Dims(out)

    def execute_async_v3(self, stream_handle: int) -> bool:
        engine, cuda = self._engine, self._env.cuda
        h = engine._h
        if self._shape is None:
            return self._error("IExecutionContext::enqueueV3: Error Code 3: input shape not specified")
        names = (h["input"], h["output"])
        if any(n not in self._addresses for n in names):
            return self._error("IExecutionContext::enqueueV3: Error Code 3: tensor address not set")
        shape = self._shape
        in_dtype, out_dtype = np.dtype(NUMPY_TYPES[h["input_dtype"]]), np.dtype(NUMPY_TYPES[h["output_dtype"]])
        in_bytes = int(np.prod(shape)) * in_dtype.itemsize
        out_bytes = int(np.prod((shape[0], *h["output_shape"][1:]))) * out_dtype.itemsize
        in_ptr, out_ptr = self._addresses[names[0]], self._addresses[names[1]]
        if not (cuda.block(in_ptr, in_bytes, "device") and cuda.block(out_ptr, out_bytes, "device")):
            return self._error("IExecutionContext::enqueueV3: tensor addresses must be device memory large enough")
        capturing = cuda.capturing(stream_handle)
        if capturing and shape != self._warm_shape:
            cuda.invalidate_capture(stream_handle)
            return self._error(
                "IExecutionContext::enqueueV3: Error Code 1: Cuda Runtime (operation not permitted when stream is "
                "capturing): the input shape changed since the last enqueueV3; call enqueueV3 once before capturing"
            )

        def work() -> None:
            x = np.frombuffer((ctypes.c_byte * in_bytes).from_address(in_ptr), dtype=in_dtype).reshape(shape)
            y = np.ascontiguousarray(engine._run(x.copy()), dtype=out_dtype)
            ctypes.memmove(out_ptr, y.ctypes.data, out_bytes)

        if not cuda.enqueue(stream_handle, work):
            return self._error("IExecutionContext::enqueueV3: invalid stream")
        if not capturing:
            self._warm_shape = shape
        return True
