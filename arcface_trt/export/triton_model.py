"""What one Triton model folder holds: its tensors, its engine files and how it batches.

:class:`TritonModel` is filled in once (by :mod:`arcface_trt.export.triton`) and both
``config.pbtxt`` and ``README.md`` are rendered from it, so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arcface_trt.errors import InputError
from arcface_trt.model.inspect import ModelInfo

#: The one model version the export writes (Triton's version folders are numbers).
VERSION = "1"
PLATFORM_TENSORRT = "tensorrt_plan"
PLATFORM_ONNXRUNTIME = "onnxruntime_onnx"
KIND_GPU = "KIND_GPU"
KIND_CPU = "KIND_CPU"

#: numpy element type -> Triton's ``DataType`` name (model_config.proto).
_TRITON_TYPES = {
    "bool": "TYPE_BOOL",
    "uint8": "TYPE_UINT8",
    "uint16": "TYPE_UINT16",
    "uint32": "TYPE_UINT32",
    "uint64": "TYPE_UINT64",
    "int8": "TYPE_INT8",
    "int16": "TYPE_INT16",
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "float16": "TYPE_FP16",
    "float32": "TYPE_FP32",
    "float64": "TYPE_FP64",
    "bfloat16": "TYPE_BF16",
}
_TYPE_PREFIX = "TYPE_"


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor as Triton sees it."""

    name: str
    #: numpy name of the element type (``float32``).
    dtype: str
    #: Triton's dims: without the batch dimension when the model batches (``max_batch_size > 0``).
    dims: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.dtype not in _TRITON_TYPES:
            raise InputError(f"tensor '{self.name}' has element type {self.dtype}, which Triton cannot carry")

    @property
    def data_type(self) -> str:
        """``TYPE_FP32`` style: what ``config.pbtxt`` says."""
        return _TRITON_TYPES[self.dtype]

    @property
    def client_datatype(self) -> str:
        """``FP32`` style: what ``tritonclient``'s ``InferInput`` takes."""
        return self.data_type[len(_TYPE_PREFIX) :]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record."""
        return {"name": self.name, "data_type": self.data_type, "dims": list(self.dims)}


@dataclass(frozen=True)
class ModelFile:
    """One engine file in the version folder."""

    #: The cached engine it is copied from.
    source: Path
    #: Its name in ``{name}/1/``.
    filename: str
    #: The engine's name in the cache (``arcface_r18-fp16-sm90.plan``).
    engine: str
    sha256: str
    #: ``"8.9"`` style: the GPU a plan was built for (None for a CPU engine).
    compute_capability: str | None = None
    #: What built it: the GPU's name, or None for a CPU engine.
    built_on: str | None = None
    #: A hardware-compatible plan (``ampere_plus``): it runs on every GPU of compute capability 8.0 or newer.
    portable: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record."""
        return {
            "filename": self.filename,
            "engine": self.engine,
            "source": str(self.source),
            "sha256": self.sha256,
            "compute_capability": self.compute_capability,
            "built_on": self.built_on,
            "portable": self.portable,
        }


@dataclass(frozen=True)
class TritonModel:
    """Everything ``config.pbtxt`` and ``README.md`` say about one model folder."""

    name: str
    platform: str
    kind: str
    #: 0 when the engine has a fixed batch (the dims then include it).
    max_batch_size: int
    preferred_batch_sizes: tuple[int, ...]
    #: The smallest batch the engine runs (a TensorRT profile's min; 1 for a CPU engine).
    min_batch: int
    input: TensorSpec
    output: TensorSpec
    files: tuple[ModelFile, ...]
    #: The source ONNX: its name, sha256 and the input spec (size, mean, std) the engines expect.
    source: ModelInfo
    precision: str
    #: ``TensorRT 10.16.1`` or ``ONNX Runtime 1.20.1``: what made the engine.
    runtime: str
    #: The TensorRT version the plans need (None for a CPU engine).
    trt_version: str | None = None
    #: Version-compatible plans (later TensorRT releases load them, with Triton's ``version-compatible=true``).
    version_compatible: bool = False
    default_model_filename: str | None = None
    cc_model_filenames: dict[str, str] = field(default_factory=dict)

    @property
    def batches(self) -> bool:
        """True when Triton batches requests (``max_batch_size > 0``)."""
        return self.max_batch_size > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record."""
        return {
            "name": self.name,
            "platform": self.platform,
            "kind": self.kind,
            "max_batch_size": self.max_batch_size,
            "preferred_batch_sizes": list(self.preferred_batch_sizes),
            "input": self.input.to_dict(),
            "output": self.output.to_dict(),
            "files": [f.to_dict() for f in self.files],
            "default_model_filename": self.default_model_filename,
            "cc_model_filenames": dict(self.cc_model_filenames),
            "precision": self.precision,
            "runtime": self.runtime,
            "trt_version": self.trt_version,
            "version_compatible": self.version_compatible,
            "input_spec": self.source.input_spec.to_dict(),
            "source_model": {"path": self.source.path, "sha256": self.source.sha256},
        }
