"""What a built engine really runs: the engine inspector's per-layer information, read and parsed.

TensorRT's ``IEngineInspector.get_engine_information(LayerInformationFormat.JSON)`` returns
``{"Layers": [...], "Bindings": [...]}``. For an engine built with
``ProfilingVerbosity.DETAILED`` each layer is a record such as (from NVIDIA's TensorRT Engine
Explorer examples, ``tools/experimental/trt-engine-explorer/examples`` in NVIDIA/TensorRT)::

    {"Name": "Conv_5 + Add_6 + Relu_7", "LayerType": "CaskConvolution", "ParameterType": "Convolution",
     "Inputs": [{"Name": "input.8", "Location": "Device", "Dimensions": [32, 64, 56, 56],
                 "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}, ...],
     "Outputs": [...], "Weights": {"Type": "Half", "Count": 36864}, ...}

with the ONNX node names of a fused group joined by ``" + "``. Under the default verbosity a
layer is only its name. A layer's precision is read as the engine explorer reads it: from the
``Format/Datatype`` of its first input (else its first output, else its weights' type), e.g.
"Row major linear FP32" -> fp32, "Thirty-two wide channel vectorized row major Int8 format" ->
int8. The formats of a dynamic-shape engine are shown only through an execution context whose
input shape is set (otherwise they read "N/A"), so :func:`read_engine_layers` sets one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from arcface_trt.engine.builder import hardware_setting
from arcface_trt.engine.runtime import EngineIO, LoadOptions, deserialize, engine_io
from arcface_trt.engine.trt_api import TrtLog, trt
from arcface_trt.errors import BackendUnavailableError, InputError
from arcface_trt.records import Record

#: Words of format and weight-type strings -> precision (the engine explorer's table, lower-cased).
_PRECISION_WORDS = {
    "fp32": "fp32",
    "float": "fp32",
    "fp16": "fp16",
    "half": "fp16",
    "bfloat16": "bf16",
    "int8": "int8",
    "fp8": "fp8",
    "int4": "int4",
    "fp4": "fp4",
    "int32": "int32",
    "int64": "int64",
    "uint8": "uint8",
    "bool": "bool",
    "double": "fp64",
}
#: Layer kinds that carry the compute: convolutions and matrix multiplications (TensorRT runs
#: a Gemm as a ``CaskConvolution`` or a ``MatrixMultiply`` layer, depending on the version).
_COMPUTE = re.compile(r"Convolution|Deconvolution|ConvActPool|MatrixMultiply|FullyConnected|Gemm")
#: Layer kinds that only move or reformat data.
_DATA_MOVEMENT = ("Reformat", "NoOp", "Shuffle")
#: TensorRT's separator between the node names of a fused layer.
FUSION_SEPARATOR = " + "


def precision_of(text: Any) -> str | None:
    """The precision a ``Format/Datatype`` (or weights ``Type``) string names; None when it names none."""
    if not isinstance(text, str):
        return None
    for word in re.findall(r"[A-Za-z]+\d*", text):
        found = _PRECISION_WORDS.get(word.lower())
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class LayerInfo(Record):
    """One engine layer: its name (fused node names joined by " + "), kind and precision."""

    name: str
    layer_type: str | None
    parameter_type: str | None
    #: fp32 | fp16 | int8 | ... ; None when the engine does not show it.
    precision: str | None

    @property
    def nodes(self) -> tuple[str, ...]:
        """The ONNX node (or weight) names fused into this layer."""
        return tuple(self.name.split(FUSION_SEPARATOR))

    @property
    def is_compute(self) -> bool:
        """A convolution or matrix multiplication layer."""
        return bool(_COMPUTE.search(self.parameter_type or self.layer_type or ""))

    @property
    def moves_data(self) -> bool:
        """A reformat, copy or shuffle: no arithmetic of its own."""
        return (self.parameter_type or self.layer_type) in _DATA_MOVEMENT


@dataclass(frozen=True)
class EngineLayers(Record):
    """The layers of an engine as its inspector describes them."""

    layers: tuple[LayerInfo, ...]
    #: Per-layer records (built with ProfilingVerbosity.DETAILED), not names only.
    detailed: bool
    bindings: tuple[str, ...] = ()


def _tensors(record: dict[str, Any], key: str) -> list[Any]:
    value = record.get(key)
    return value if isinstance(value, list) else []


def parse_layer(record: Any) -> LayerInfo:
    """One layer of the inspector's JSON: a detailed record, or (default verbosity) just its name."""
    if isinstance(record, str):
        return LayerInfo(record, None, None, None)
    if not isinstance(record, dict) or not isinstance(record.get("Name"), str):
        raise InputError(f"the engine inspector described a layer as {str(record)[:80]!r}: not a layer record")
    formats = [
        t.get("Format/Datatype")
        for t in _tensors(record, "Inputs") + _tensors(record, "Outputs")
        if isinstance(t, dict)
    ]
    weights = record.get("Weights")
    if isinstance(weights, dict):
        formats.append(weights.get("Type"))
    precision = next((p for p in map(precision_of, formats) if p is not None), None)
    layer_type, parameter_type = record.get("LayerType"), record.get("ParameterType")
    return LayerInfo(
        record["Name"],
        layer_type if isinstance(layer_type, str) else None,
        parameter_type if isinstance(parameter_type, str) else None,
        precision,
    )


def parse_engine_information(text: str) -> EngineLayers:
    """Parse ``get_engine_information(LayerInformationFormat.JSON)``; InputError when it is not that document."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        raise InputError("the engine inspector's information is not JSON") from None
    layers = data.get("Layers") if isinstance(data, dict) else None
    if not isinstance(layers, list):
        raise InputError("the engine inspector's information has no 'Layers' list")
    bindings = data.get("Bindings") if isinstance(data.get("Bindings"), list) else []
    parsed = tuple(parse_layer(record) for record in layers)
    detailed = bool(layers) and all(isinstance(record, dict) for record in layers)
    return EngineLayers(parsed, detailed, tuple(str(b) for b in bindings))


def read_engine_layers(engine: Any, io: EngineIO, batch: int, trt_log: TrtLog) -> EngineLayers:
    """The inspector's layers of a deserialized ``engine``, through a context with the input shape set to ``batch``.

    The context allocates no device memory of its own (``USER_MANAGED``): it is only inspected.
    """
    context = engine.create_execution_context(trt.ExecutionContextAllocationStrategy.USER_MANAGED)
    if context is None:
        raise BackendUnavailableError(f"TensorRT could not create an execution context: {trt_log.summary()}")
    if not context.set_input_shape(io.input_name, (batch, *io.input_shape)):
        raise BackendUnavailableError(f"TensorRT refused batch {batch} for inspection: {trt_log.summary()}")
    inspector = engine.create_engine_inspector()
    inspector.execution_context = context
    text = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    # TensorRT objects go in reverse order of creation: the inspector before the context it points to.
    del inspector
    return parse_engine_information(text)


@dataclass(frozen=True)
class EngineFacts:
    """What a deserialized plan says about itself."""

    io: EngineIO
    #: The ``hardware_compatibility`` setting it was built with (``none``, ``ampere_plus``, ``same_cc``).
    hardware_compatibility: str
    #: ``ProfilingVerbosity`` member name it was built with.
    profiling_verbosity: str
    layers: EngineLayers


def engine_facts(
    data: bytes, trt_log: TrtLog, where: object, batch: int | None = None, load: LoadOptions = LoadOptions()
) -> EngineFacts:
    """Load a serialized plan here (as ``load`` says) and read its I/O, compatibility level and layers (at
    ``batch``, default opt).

    Needs TensorRT and a GPU that can load the plan (:func:`~arcface_trt.engine.runtime.deserialize`).
    """
    runtime, engine = deserialize(data, trt_log, where, load)
    io = engine_io(engine)
    layers = read_engine_layers(engine, io, batch or io.opt_batch, trt_log)
    facts = EngineFacts(
        io=io,
        hardware_compatibility=hardware_setting(engine.hardware_compatibility_level),
        profiling_verbosity=str(engine.profiling_verbosity.name),
        layers=layers,
    )
    # The engine before its runtime: the order TensorRT requires.
    del engine
    del runtime
    return facts
