"""Read what a recognition ONNX model expects: input name and size, its input spec, embedding size.

The input spec (side, channel order, mean/std, normalisation inside the graph) is resolved
here, once per model, from explicit settings, the graph and InsightFace's rule: see
:mod:`arcface_trt.model.input_spec`.

A model saved with external data (``onnx.save(..., save_as_external_data=True)``) is the
``.onnx`` file plus its data files: its sha256 (engine keys, manifests, embed outputs) covers
both, and its data files are read only where onnx allows (inside the model's folder).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arcface_trt.errors import InputError, first_line
from arcface_trt.fileio import sha256_file
from arcface_trt.lazy import lazy_import
from arcface_trt.model.input_spec import InputSettings, InputSpec, report_difference, resolve_input_spec
from arcface_trt.records import Record

onnx = lazy_import("onnx")


@dataclass(frozen=True)
class ModelInfo(Record):
    """What the backends need to know about a recognition model."""

    path: str
    name: str
    input_name: str
    input_shape: tuple[int | str, ...]
    output_name: str
    embedding_dim: int
    #: numpy names of the input's and the output's element types (``float32`` for InsightFace's models).
    input_dtype: str
    output_dtype: str
    #: How crops become this model's input (see :mod:`arcface_trt.model.input_spec`).
    input_spec: InputSpec
    #: sha256 of the model: of the ``.onnx`` file, or with external data of the file and its data files.
    sha256: str
    #: True when the batch dimension is symbolic (dynamic), False when fixed.
    dynamic_batch: bool
    #: The external data files the model reads (relative to its folder); empty when its weights are inline.
    external_data: tuple[str, ...] = ()
    #: The model is already quantized: it holds DequantizeLinear nodes (a QDQ model).
    quantized: bool = False

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) of the input, the order cv2 takes."""
        return int(self.input_shape[3]), int(self.input_shape[2])

    def report_input_spec(self) -> None:
        """Warn once (one line) when the input spec differs from what InsightFace's rule would feed this model."""
        report_difference(self.input_spec, Path(self.path).name, self.sha256)


def _dims(value_info: Any) -> tuple[int | str, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims)


def _dtype(value_info: Any, path: Path) -> str:
    try:
        return str(onnx.helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type).name)
    except (KeyError, ValueError):
        raise InputError(f"{path}: tensor '{value_info.name}' has no numeric element type") from None


def is_quantized(graph: Any) -> bool:
    """True when the graph holds a DequantizeLinear node: explicitly quantized (QDQ), or weight-only quantized."""
    return any(node.op_type == "DequantizeLinear" for node in graph.node)


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor of ``graph`` that may keep its data in a file: initializers and attribute tensors, subgraphs too."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _tensors(subgraph)


def external_data_files(model: Any) -> tuple[str, ...]:
    """The data files a model loaded without its external data refers to (sorted, each once)."""
    external = onnx.TensorProto.EXTERNAL
    return tuple(
        sorted(
            {
                entry.value
                for tensor in _tensors(model.graph)
                if tensor.data_location == external
                for entry in tensor.external_data
                if entry.key == "location"
            }
        )
    )


def _load_structure(path: Path) -> tuple[Any, tuple[str, ...]]:
    """The model without its external data, and the names of its data files."""
    if not path.exists():
        raise InputError(f"ONNX model not found: {path}")
    if not path.is_file():
        raise InputError(f"ONNX model path is not a file: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except PermissionError:
        raise InputError(f"ONNX model is not readable: {path}") from None
    except Exception as exc:  # onnx raises DecodeError, ValueError, RuntimeError... on bad files
        raise InputError(f"not a valid ONNX model: {path} ({type(exc).__name__})") from None
    if not model.graph.node:
        raise InputError(f"not a valid ONNX model: {path} (empty graph)")
    return model, external_data_files(model)


def _load(path: Path) -> tuple[Any, tuple[str, ...]]:
    """The model with its external data loaded, and the names of its data files."""
    model, files = _load_structure(path)
    if files:
        try:
            # onnx refuses a location outside the model's folder (ValidationError) and says why.
            onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
        except Exception as exc:  # ValidationError, FileNotFoundError, OSError, ValueError...
            reason = f"{type(exc).__name__}: {first_line(exc)}"
            raise InputError(f"cannot read the external data of ONNX model {path} ({reason})") from None
    return model, files


def load_onnx(path: str | Path) -> Any:
    """Load an ONNX model with its external data, turning a missing or unparsable one into :class:`InputError`."""
    return _load(Path(path))[0]


def serialize_model(model: Any, src: str | Path, purpose: str) -> bytes:
    """``model`` as bytes with every weight inline; InputError naming ``purpose`` past protobuf's 2 GiB limit."""
    try:
        return model.SerializeToString()
    except ValueError as exc:  # protobuf refuses messages over 2 GiB
        raise InputError(f"{src}: cannot {purpose}: the model is over protobuf's 2 GiB ({first_line(exc)})") from None


def model_sha256(path: Path, external_data: tuple[str, ...] = ()) -> str:
    """The model's identity: the ``.onnx`` file's sha256, or with external data a sha256 over it and its data files.

    With data files: sha256 of the file's hex digest, then for each data file (sorted) a NUL,
    its name, a NUL and its hex digest, so changing, renaming or adding a weights file changes it.
    """
    own = sha256_file(path)
    if not external_data:
        return own
    digest = hashlib.sha256(own.encode())
    for name in external_data:
        digest.update(b"\0" + name.encode() + b"\0" + sha256_file(path.parent / name).encode())
    return digest.hexdigest()


def onnx_sha256(path: str | Path) -> str:
    """The identity (:func:`model_sha256`) of the ONNX file at ``path``, its external data files included."""
    path = Path(path)
    return model_sha256(path, _load_structure(path)[1])


def inspect_model(path: str | Path, settings: InputSettings | None = None) -> ModelInfo:
    """Inspect a recognition model and resolve its input spec; raise :class:`InputError` if it is not one.

    A recognition model has one square image input ``[N, 3, S, S]`` (any fixed side ``S``) and one
    2-D output ``[N, D]`` (any width ``D``). ``settings``: explicit input settings (config, command line).
    """
    path = Path(path)
    model, external_data = _load(path)
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise InputError(f"{path}: a recognition model has one input, this one has {len(inputs)}")
    shape = _dims(inputs[0])
    ok = len(shape) == 4 and shape[1] == 3 and isinstance(shape[2], int) and shape[2] == shape[3] and shape[2] >= 1
    if not ok:
        raise InputError(
            f"{path}: input '{inputs[0].name}' has shape {list(shape)}; "
            "a recognition model takes [N, 3, S, S] images (square, of any fixed side S)"
        )
    if len(graph.output) != 1:
        raise InputError(f"{path}: a recognition model has one output, this one has {len(graph.output)}")
    out_shape = _dims(graph.output[0])
    if len(out_shape) != 2 or not isinstance(out_shape[1], int) or out_shape[1] < 1:
        raise InputError(
            f"{path}: output '{graph.output[0].name}' has shape {list(out_shape)}; "
            "a recognition model returns [N, D] embeddings"
        )
    return ModelInfo(
        path=str(path),
        name=path.stem,
        input_name=inputs[0].name,
        input_shape=shape,
        output_name=graph.output[0].name,
        embedding_dim=int(out_shape[1]),
        input_dtype=_dtype(inputs[0], path),
        output_dtype=_dtype(graph.output[0], path),
        input_spec=resolve_input_spec(graph, inputs[0].name, int(shape[2]), settings or InputSettings()),
        sha256=model_sha256(path, external_data),
        dynamic_batch=not isinstance(shape[0], int),
        external_data=external_data,
        quantized=is_quantized(graph),
    )
