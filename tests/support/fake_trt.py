"""A strict fake ``tensorrt`` module in two shapes: 10.16-like and 11.4-like.

``make_tensorrt("10", cuda)`` / ``make_tensorrt("11", cuda)`` return a module object
holding only names that the real module of that version has (checked against
``shared/reference/tensorrt-api/*.json`` by ``tests/engine/test_fake_conformance.py``, member by
member and signature by signature). Instances refuse to get public attributes that
are not declared, so code that pokes an 11.x object with a 10.x-only member fails.

What it does, enough to drive build and inference end to end:

- ``OnnxParser.parse`` really loads the ONNX; ops outside the default ONNX domain are
  UNSUPPORTED_NODE errors; inputs/outputs become network tensors (``-1`` where dynamic).
- ``Builder.build_serialized_network`` checks what TensorRT checks for this project
  (profile present and covering fixed dims, no precision flags on strongly typed
  networks, workspace >= 16 MiB: the fake's stand-in for a failing build), consults
  and fills the timing cache, and returns a "plan": a header (TensorRT version, GPU
  compute capability, hardware compatibility, profile, flags) plus the ONNX bytes.
- ``Runtime.deserialize_cuda_engine`` returns None and logs NVIDIA's messages when the
  plan comes from another TensorRT version or an incompatible GPU.
- ``IExecutionContext.execute_async_v3`` reads the input from the fake device memory,
  runs the ONNX with ONNX Runtime on the CPU, writes the output; on a capturing stream
  it is recorded into the CUDA graph. Plans built with ``BuilderFlag.FP16`` (10.x)
  round inputs and outputs through float16 (an approximation of fp16 drift); on 11.x
  fp16 comes from the mixed-precision ONNX itself, which ONNX Runtime runs as is.

No GPU in the fake cuda (``FakeCuda(driver=False)``) makes ``Builder(logger)`` log
"CUDA initialization failure with error: 35" and raise ``TypeError``, as the real one does.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import struct
import types
from typing import Any

import numpy as np

from tests.support.fake_cuda import FakeCuda

VERSIONS = {"10": "10.16.1.11", "11": "11.4.0.106"}
PLAN_MAGIC = b"FAKETRTPLAN1"
TIMING_MAGIC = b"FAKETRTTIMING1\n"
MIN_WORKSPACE = 16 << 20


# -- enums -------------------------------------------------------------------------------
class _EnumValue:
    """One pybind11 enum value: ``.name``, ``.value``, ``int()``."""

    __slots__ = ("_enum", "_name", "_value")

    def __init__(self, enum_name: str, name: str, value: int) -> None:
        self._enum, self._name, self._value = enum_name, name, value

    @property
    def name(self) -> str:
        return self._name

    @property
    def value(self) -> int:
        return self._value

    def __int__(self) -> int:
        return self._value

    __index__ = __int__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _EnumValue) and (other._enum, other._value) == (self._enum, self._value)

    def __hash__(self) -> int:
        return hash((self._enum, self._value))

    def __repr__(self) -> str:
        return f"<{self._enum}.{self._name}: {self._value}>"


def _enum(type_name: str, values: dict[str, int] | list[str]) -> type:
    if isinstance(values, list):
        values = {n: i for i, n in enumerate(values)}
    cls = type(type_name, (), {"__doc__": f"fake enum {type_name}"})
    for name, value in values.items():
        setattr(cls, name, _EnumValue(type_name, name, value))
    return cls


class _Strict:
    """Public attributes exist only if the class declares them (properties included)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            attr = getattr(type(self), name, None)
            if not (isinstance(attr, property) and attr.fset is not None):
                raise AttributeError(
                    f"fake tensorrt: '{type(self).__name__}' object has no settable attribute '{name}'"
                )
        object.__setattr__(self, name, value)


class Dims:
    """``tensorrt.Dims``: a sequence of ints."""

    MAX_DIMS = 8

    def __init__(self, shape: Any = ()) -> None:
        self._d = tuple(int(x) for x in shape)

    def __len__(self) -> int:
        return len(self._d)

    def __getitem__(self, i: Any) -> Any:
        return self._d[i]

    def __iter__(self) -> Any:
        return iter(self._d)

    def __eq__(self, other: object) -> bool:
        return tuple(self) == tuple(other) if isinstance(other, Dims | tuple | list) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._d)

    def __repr__(self) -> str:
        return f"Dims({list(self._d)})"


class IHostMemory(_Strict):
    """Serialized bytes (buffer protocol in the real bindings)."""

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)

    @property
    def nbytes(self) -> int:
        return len(self._data)

    @property
    def dtype(self) -> Any:
        return _DATA_TYPE.UINT8

    def __bytes__(self) -> bytes:
        return self._data

    def __buffer__(self, flags: int) -> memoryview:
        return memoryview(self._data)


_DATA_TYPE = _enum(
    "DataType", ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8", "FP8", "BF16", "INT64", "INT4", "FP4", "E8M0"]
)
_NP = {
    "FLOAT": np.float32,
    "HALF": np.float16,
    "INT8": np.int8,
    "INT32": np.int32,
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "INT64": np.int64,
}
_ONNX_TO_TRT = {1: "FLOAT", 10: "HALF", 3: "INT8", 6: "INT32", 9: "BOOL", 2: "UINT8", 7: "INT64"}


def make_tensorrt(major: str, cuda: FakeCuda | None) -> types.ModuleType:
    """Build a fake ``tensorrt`` module shaped like TensorRT ``major`` ("10" or "11")."""
    version = VERSIONS[major]
    ten = major == "10"

    builder_flags = ["TF32", "REFIT", "VERSION_COMPATIBLE", "STRIP_PLAN", "DIRECT_IO", "DEBUG", "GPU_FALLBACK"]
    if ten:
        builder_flags += ["FP16", "BF16", "INT8", "FP8", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS"]
    BuilderFlag = _enum("BuilderFlag", builder_flags)
    NetworkDefinitionCreationFlag = _enum(
        "NetworkDefinitionCreationFlag", {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1} if ten else {"STRONGLY_TYPED": 1}
    )
    MemoryPoolType = _enum(
        "MemoryPoolType",
        ["WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM", "DLA_GLOBAL_DRAM", "TACTIC_DRAM", "TACTIC_SHARED_MEMORY"],
    )
    HardwareCompatibilityLevel = _enum("HardwareCompatibilityLevel", ["NONE", "AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY"])
    TensorIOMode = _enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
    ErrorCode = _enum(
        "ErrorCode",
        [
            "SUCCESS",
            "INTERNAL_ERROR",
            "MEM_ALLOC_FAILED",
            "MODEL_DESERIALIZE_FAILED",
            "INVALID_VALUE",
            "INVALID_GRAPH",
            "INVALID_NODE",
            "UNSUPPORTED_GRAPH",
            "UNSUPPORTED_NODE",
        ],
    )
    ExecutionContextAllocationStrategy = _enum(
        "ExecutionContextAllocationStrategy", ["STATIC", "ON_PROFILE_CHANGE", "USER_MANAGED"]
    )
    Severity = _enum("Severity", ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"])

    class ILogger(_Strict):
        """Subclass it and implement ``log``; call ``ILogger.__init__(self)``."""

        INTERNAL_ERROR = Severity.INTERNAL_ERROR
        ERROR = Severity.ERROR
        WARNING = Severity.WARNING
        INFO = Severity.INFO
        VERBOSE = Severity.VERBOSE

        def __init__(self) -> None:
            pass

        def log(self, severity: Any, msg: str) -> None:
            raise NotImplementedError("ILogger.log must be overridden")

    ILogger.Severity = Severity

    def _log(logger: Any, severity: Any, msg: str) -> None:
        logger.log(severity, msg)

    class ITensor(_Strict):
        def __init__(self, name: str, shape: tuple, dtype: Any) -> None:
            self._name, self._shape, self._dtype = name, Dims(shape), dtype

        @property
        def name(self) -> str:
            return self._name

        @property
        def shape(self) -> Dims:
            return self._shape

        @property
        def dtype(self) -> Any:
            return self._dtype

    class INetworkDefinition(_Strict):
        def __init__(self, flags: int) -> None:
            self._flags = flags
            self._strongly_typed = (not ten) or bool(flags & (1 << int(NetworkDefinitionCreationFlag.STRONGLY_TYPED)))
            self._inputs: list[ITensor] = []
            self._outputs: list[ITensor] = []
            self._onnx: bytes | None = None

        @property
        def num_inputs(self) -> int:
            return len(self._inputs)

        @property
        def num_outputs(self) -> int:
            return len(self._outputs)

        def get_input(self, index: int) -> ITensor:
            return self._inputs[index]

        def get_output(self, index: int) -> ITensor:
            return self._outputs[index]

        def get_flag(self, flag: Any) -> bool:
            return bool(self._flags & (1 << int(flag)))

    class ParserError(_Strict):
        def __init__(self, code: Any, desc: str, node: int = -1, node_name: str = "", node_operator: str = "") -> None:
            self._code, self._desc, self._node, self._node_name, self._op = code, desc, node, node_name, node_operator

        def code(self) -> Any:
            return self._code

        def desc(self) -> str:
            return self._desc

        def node(self) -> int:
            return self._node

        def node_name(self) -> str:
            return self._node_name

        def node_operator(self) -> str:
            return self._op

    def _tensor(value_info: Any) -> ITensor:
        dims = value_info.type.tensor_type.shape.dim
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
        dtype = getattr(_DATA_TYPE, _ONNX_TO_TRT.get(value_info.type.tensor_type.elem_type, "FLOAT"))
        return ITensor(value_info.name, shape, dtype)

    class OnnxParser(_Strict):
        def __init__(self, network: INetworkDefinition, logger: Any) -> None:
            self._network, self._logger, self._errors = network, logger, []

        @property
        def num_errors(self) -> int:
            return len(self._errors)

        def get_error(self, index: int) -> ParserError:
            return self._errors[index]

        def clear_errors(self) -> None:
            self._errors = []

        def parse(self, model: Any, path: str | None = None) -> bool:
            import onnx

            data = bytes(model)
            try:
                proto = onnx.load_from_string(data)
            except Exception:
                self._errors.append(
                    ParserError(ErrorCode.MODEL_DESERIALIZE_FAILED, "Failed to parse ONNX model from file")
                )
                _log(self._logger, Severity.ERROR, "ModelImporter.cpp: Failed to parse ONNX model")
                return False
            for i, node in enumerate(proto.graph.node):
                if node.domain not in ("", "ai.onnx"):
                    self._errors.append(
                        ParserError(
                            ErrorCode.UNSUPPORTED_NODE,
                            f"No importer registered for op: {node.op_type}. Attempting to import as plugin.",
                            i,
                            node.name,
                            node.op_type,
                        )
                    )
            if self._errors:
                return False
            inits = {init.name for init in proto.graph.initializer}
            self._network._inputs = [_tensor(v) for v in proto.graph.input if v.name not in inits]
            self._network._outputs = [_tensor(v) for v in proto.graph.output]
            self._network._onnx = data
            return True

    class IOptimizationProfile(_Strict):
        def __init__(self) -> None:
            self._shapes: dict[str, tuple[tuple, tuple, tuple]] = {}

        def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
            self._shapes[input] = (tuple(min), tuple(opt), tuple(max))

        def get_shape(self, input: str) -> list[Dims]:
            return [Dims(s) for s in self._shapes.get(input, ((), (), ()))]

    class ITimingCache(_Strict):
        def __init__(self, entries: dict[str, int]) -> None:
            self._entries = dict(entries)

        def serialize(self) -> IHostMemory:
            body = json.dumps({"trt_version": version, "entries": self._entries}, sort_keys=True).encode()
            return IHostMemory(TIMING_MAGIC + body)

        def combine(self, input_cache: ITimingCache, ignore_mismatch: bool) -> bool:
            self._entries.update(input_cache._entries)
            return True

        def reset(self) -> bool:
            self._entries = {}
            return True

    class IBuilderConfig(_Strict):
        def __init__(self) -> None:
            self._pools = {int(MemoryPoolType.WORKSPACE): 1 << 40}
            self._flags = {int(BuilderFlag.TF32)}  # TF32 is on by default, as in TensorRT
            self._hw = HardwareCompatibilityLevel.NONE
            self._profiles: list[IOptimizationProfile] = []
            self._timing: ITimingCache | None = None

        def set_memory_pool_limit(self, pool: Any, pool_size: int) -> None:
            self._pools[int(pool)] = int(pool_size)

        def get_memory_pool_limit(self, pool: Any) -> int:
            return self._pools.get(int(pool), 0)

        def set_flag(self, flag: Any) -> None:
            self._flags.add(int(flag))

        def clear_flag(self, flag: Any) -> None:
            self._flags.discard(int(flag))

        def get_flag(self, flag: Any) -> bool:
            return int(flag) in self._flags

        @property
        def hardware_compatibility_level(self) -> Any:
            return self._hw

        @hardware_compatibility_level.setter
        def hardware_compatibility_level(self, value: Any) -> None:
            if not (isinstance(value, _EnumValue) and value._enum == "HardwareCompatibilityLevel"):
                raise TypeError(f"incompatible type for hardware_compatibility_level: {value!r}")
            self._hw = value

        @property
        def num_optimization_profiles(self) -> int:
            return len(self._profiles)

        def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
            self._profiles.append(profile)
            return len(self._profiles) - 1

        def create_timing_cache(self, serialized_timing_cache: Any) -> ITimingCache | None:
            data = bytes(serialized_timing_cache)
            if not data:
                return ITimingCache({})
            if not data.startswith(TIMING_MAGIC):
                return None
            body = json.loads(data[len(TIMING_MAGIC) :])
            if body.get("trt_version") != version:
                return None
            return ITimingCache(body["entries"])

        def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
            self._timing = cache
            return True

        def get_timing_cache(self) -> ITimingCache | None:
            return self._timing

    def _device() -> Any:
        return cuda.device if cuda is not None else None

    class Builder(_Strict):
        def __init__(self, logger: Any) -> None:
            if _device() is None:
                _log(logger, Severity.ERROR, "CUDA initialization failure with error: 35")
                raise TypeError("pybind11::init(): factory function returned nullptr")
            self._logger = logger

        def create_network(self, flags: int = 0) -> INetworkDefinition:
            return INetworkDefinition(int(flags))

        def create_builder_config(self) -> IBuilderConfig:
            return IBuilderConfig()

        def create_optimization_profile(self) -> IOptimizationProfile:
            return IOptimizationProfile()

        def _fail(self, message: str) -> None:
            _log(self._logger, Severity.ERROR, message)

        def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> IHostMemory | None:
            if network._onnx is None:
                return self._fail("Network must have at least one output")
            if not config._profiles:
                return self._fail("Network has dynamic or shape inputs, but no optimization profile has been defined.")
            profile = config._profiles[0]
            for tensor in network._inputs:
                if tensor.name not in profile._shapes:
                    return self._fail(f"{tensor.name}: dynamic input is missing dimensions in profile 0.")
                lo, mid, hi = profile._shapes[tensor.name]
                if not (len(lo) == len(mid) == len(hi) == len(tensor.shape)):
                    return self._fail(f"{tensor.name}: profile rank does not match the network")
                for d, a, b, c in zip(tensor.shape, lo, mid, hi, strict=True):
                    if not a <= b <= c:
                        return self._fail(f"{tensor.name}: profile must satisfy min <= opt <= max")
                    if d != -1 and not a == b == c == d:
                        return self._fail(
                            f"{tensor.name}: profile dimensions [{a}, {b}, {c}] "
                            f"do not match the network's fixed dimension {d}"
                        )
            fp16 = ten and int(getattr(BuilderFlag, "FP16", -1)) in config._flags
            if network._strongly_typed and ten and (fp16 or int(BuilderFlag.INT8) in config._flags):
                return self._fail("API Usage Error (precision flags are not allowed with a strongly typed network)")
            if config._pools[int(MemoryPoolType.WORKSPACE)] < MIN_WORKSPACE:
                return self._fail("Insufficient workspace: no implementation fits the WORKSPACE pool limit")
            device = _device()
            cc = f"{device.major}.{device.minor}"
            if config._timing is not None:
                key = f"{cc}|{hashlib.sha256(network._onnx).hexdigest()[:16]}|fp16={fp16}"
                hit = key in config._timing._entries
                config._timing._entries[key] = config._timing._entries.get(key, 0) + 1
                _log(self._logger, Severity.INFO, f"fake builder: timing cache {'hit' if hit else 'miss'} for {key}")
            output = network._outputs[0]
            header = {
                "trt_version": version,
                "compute": cc,
                "hw": config._hw.name,
                "fp16_flag": fp16,
                "strongly_typed": network._strongly_typed,
                "profile": {k: list(map(list, v)) for k, v in profile._shapes.items()},
                "input": network._inputs[0].name,
                "input_dtype": network._inputs[0].dtype.name,
                "output": output.name,
                "output_shape": list(output.shape),
                "output_dtype": output.dtype.name,
            }
            head = json.dumps(header, sort_keys=True).encode()
            return IHostMemory(PLAN_MAGIC + struct.pack("<I", len(head)) + head + network._onnx)

    if ten:
        Builder.platform_has_fast_fp16 = property(lambda self: True)

    class IExecutionContext(_Strict):
        def __init__(self, engine: ICudaEngine) -> None:
            self._engine = engine
            self._shape: tuple | None = None
            self._addresses: dict[str, int] = {}

        @property
        def engine(self) -> ICudaEngine:
            return self._engine

        def _error(self, message: str) -> bool:
            _log(self._engine._logger, Severity.ERROR, message)
            return False

        def set_input_shape(self, name: str, shape: Any) -> bool:
            e = self._engine
            if name != e._h["input"]:
                return self._error(
                    f"IExecutionContext::setInputShape: Error Code 3: API Usage Error ({name} is not an input)"
                )
            lo, _, hi = e._h["profile"][name]
            shape = tuple(int(x) for x in shape)
            if len(shape) != len(lo) or any(not a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
                return self._error(
                    "IExecutionContext::setInputShape: Error Code 3: API Usage Error "
                    f"(Given invalid tensor shape {list(shape)} "
                    f"for {name}: profile {lo}..{hi})"
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
            e = self._engine
            if self._shape is None:
                return self._error("IExecutionContext::enqueueV3: Error Code 3: input shape not specified")
            names = (e._h["input"], e._h["output"])
            if any(n not in self._addresses for n in names):
                return self._error("IExecutionContext::enqueueV3: Error Code 3: tensor address not set")
            n = self._shape[0]
            in_dtype, out_dtype = np.dtype(_NP[e._h["input_dtype"]]), np.dtype(_NP[e._h["output_dtype"]])
            in_bytes = int(np.prod(self._shape)) * in_dtype.itemsize
            out_shape = (n, *e._h["output_shape"][1:])
            out_bytes = int(np.prod(out_shape)) * out_dtype.itemsize
            in_ptr, out_ptr = self._addresses[names[0]], self._addresses[names[1]]
            if not (cuda.block(in_ptr, in_bytes, "device") and cuda.block(out_ptr, out_bytes, "device")):
                return self._error("IExecutionContext::enqueueV3: tensor addresses must be device memory large enough")
            shape = self._shape

            def work() -> None:
                x = np.frombuffer((ctypes.c_byte * in_bytes).from_address(in_ptr), dtype=in_dtype).reshape(shape)
                y = e._run(x.copy())
                ctypes.memmove(out_ptr, np.ascontiguousarray(y, dtype=out_dtype).ctypes.data, out_bytes)

            if not cuda.enqueue(stream_handle, work):
                return self._error("IExecutionContext::enqueueV3: invalid stream")
            return True

    class ICudaEngine(_Strict):
        def __init__(self, header: dict, onnx_bytes: bytes, logger: Any) -> None:
            import onnxruntime as ort

            self._h, self._logger = header, logger
            options = ort.SessionOptions()
            options.log_severity_level = 3
            self._session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])

        def _run(self, x: np.ndarray) -> np.ndarray:
            if self._h["fp16_flag"]:
                x = x.astype(np.float16).astype(np.float32)
            y = self._session.run(None, {self._h["input"]: x})[0]
            return y.astype(np.float16).astype(np.float32) if self._h["fp16_flag"] else y

        @property
        def num_io_tensors(self) -> int:
            return 2

        @property
        def num_optimization_profiles(self) -> int:
            return 1

        @property
        def hardware_compatibility_level(self) -> Any:
            return getattr(HardwareCompatibilityLevel, self._h["hw"])

        @property
        def device_memory_size_v2(self) -> int:
            return 7 << 20

        def get_tensor_name(self, index: int) -> str:
            return (self._h["input"], self._h["output"])[index]

        def get_tensor_mode(self, name: str) -> Any:
            return {self._h["input"]: TensorIOMode.INPUT, self._h["output"]: TensorIOMode.OUTPUT}.get(
                name, TensorIOMode.NONE
            )

        def get_tensor_dtype(self, name: str) -> Any:
            key = "input_dtype" if name == self._h["input"] else "output_dtype"
            return getattr(_DATA_TYPE, self._h[key])

        def get_tensor_shape(self, name: str) -> Dims:
            if name == self._h["input"]:
                lo, _, hi = self._h["profile"][name]
                return Dims(-1 if a != b else a for a, b in zip(lo, hi, strict=True))
            return Dims(self._h["output_shape"])

        def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Dims]:
            if name not in self._h["profile"] or profile_index != 0:
                _log(self._logger, Severity.ERROR, f"getProfileShape: {name} has no profile {profile_index}")
                return []
            return [Dims(s) for s in self._h["profile"][name]]

        def create_execution_context(
            self, strategy: Any = ExecutionContextAllocationStrategy.STATIC
        ) -> IExecutionContext:
            return IExecutionContext(self)

    if ten:
        ICudaEngine.device_memory_size = property(lambda self: 7 << 20)

    class Runtime(_Strict):
        def __init__(self, logger: Any) -> None:
            self._logger = logger

        def deserialize_cuda_engine(self, serialized_engine: Any) -> ICudaEngine | None:
            data = bytes(serialized_engine)
            if not data.startswith(PLAN_MAGIC) or len(data) < len(PLAN_MAGIC) + 4:
                _log(
                    self._logger,
                    Severity.ERROR,
                    "IRuntime::deserializeCudaEngine: Error Code 1: Serialization "
                    "(Serialization assertion magicTagRead == kMAGIC_TAG failed.Magic tag does not match)",
                )
                return None
            (size,) = struct.unpack("<I", data[len(PLAN_MAGIC) : len(PLAN_MAGIC) + 4])
            start = len(PLAN_MAGIC) + 4
            header = json.loads(data[start : start + size])
            if header["trt_version"] != version:
                _log(
                    self._logger,
                    Severity.ERROR,
                    "IRuntime::deserializeCudaEngine: Error Code 6: API Usage Error "
                    "(The engine plan file is not compatible with this version of TensorRT, expecting library version "
                    f"{version} got {header['trt_version']}, please rebuild.)",
                )
                return None
            device = _device()
            if device is None:
                _log(self._logger, Severity.ERROR, "CUDA initialization failure with error: 35")
                return None
            here = f"{device.major}.{device.minor}"
            ok = device.major >= 8 if header["hw"] == "AMPERE_PLUS" else here == header["compute"]
            if not ok:
                _log(
                    self._logger,
                    Severity.ERROR,
                    "IRuntime::deserializeCudaEngine: Error Code 1: Serialization "
                    "(The engine plan file is generated on an incompatible device, "
                    f"expecting compute {here} got compute "
                    f"{header['compute']}, please rebuild.)",
                )
                return None
            return ICudaEngine(header, data[start + size :], self._logger)

    def nptype(trt_type: Any) -> type:
        """Numpy type of a DataType."""
        return _NP[trt_type.name]

    def volume(iterable: Any) -> int:
        """Product of the items."""
        out = 1
        for x in iterable:
            out *= int(x)
        return out

    module = types.ModuleType("tensorrt")
    module.__doc__ = f"fake tensorrt {version} (tests/support/fake_trt.py)"
    module.__version__ = version
    names = {
        "ILogger": ILogger,
        "Builder": Builder,
        "INetworkDefinition": INetworkDefinition,
        "ITensor": ITensor,
        "OnnxParser": OnnxParser,
        "ParserError": ParserError,
        "ErrorCode": ErrorCode,
        "IBuilderConfig": IBuilderConfig,
        "IOptimizationProfile": IOptimizationProfile,
        "ITimingCache": ITimingCache,
        "IHostMemory": IHostMemory,
        "Runtime": Runtime,
        "ICudaEngine": ICudaEngine,
        "IExecutionContext": IExecutionContext,
        "Dims": Dims,
        "DataType": _DATA_TYPE,
        "BuilderFlag": BuilderFlag,
        "NetworkDefinitionCreationFlag": NetworkDefinitionCreationFlag,
        "MemoryPoolType": MemoryPoolType,
        "HardwareCompatibilityLevel": HardwareCompatibilityLevel,
        "TensorIOMode": TensorIOMode,
        "ExecutionContextAllocationStrategy": ExecutionContextAllocationStrategy,
        "float32": _DATA_TYPE.FLOAT,
        "float16": _DATA_TYPE.HALF,
        "int8": _DATA_TYPE.INT8,
        "int32": _DATA_TYPE.INT32,
        "nptype": nptype,
        "volume": volume,
    }
    for name, value in names.items():
        setattr(module, name, value)
    return module
