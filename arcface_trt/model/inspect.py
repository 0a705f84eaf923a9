"""Read what a recognition ONNX model expects: input name and size, mean/std, embedding size.

Mean/std follow InsightFace's ``ArcFaceONNX`` rule: a model whose first eight nodes
include both a ``Sub``/``_minus`` and a ``Mul``/``_mul`` node normalises inside the
graph (mean 0, std 1); any other model takes ``(x - 127.5) / 127.5``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arcface_trt.errors import InputError
from arcface_trt.fileio import sha256_file
from arcface_trt.lazy import lazy_import
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
    input_mean: float
    input_std: float
    sha256: str
    #: True when the batch dimension is symbolic (dynamic), False when fixed.
    dynamic_batch: bool

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) of the input, the order cv2 takes."""
        return int(self.input_shape[3]), int(self.input_shape[2])


def _dims(value_info: Any) -> tuple[int | str, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims)


def _dtype(value_info: Any, path: Path) -> str:
    try:
        return str(onnx.helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type).name)
    except (KeyError, ValueError):
        raise InputError(f"{path}: tensor '{value_info.name}' has no numeric element type") from None


def mean_std_from_graph(graph: Any) -> tuple[float, float]:
    """InsightFace's rule for where normalisation happens (see module docstring)."""
    names = [node.name for node in graph.node[:8]]
    has_sub = any(n.startswith(("Sub", "_minus")) for n in names)
    has_mul = any(n.startswith(("Mul", "_mul")) for n in names)
    return (0.0, 1.0) if has_sub and has_mul else (127.5, 127.5)


def load_onnx(path: str | Path) -> Any:
    """Load an ONNX model, turning a missing or unparsable file into :class:`InputError`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"ONNX model not found: {path}")
    if not path.is_file():
        raise InputError(f"ONNX model path is not a file: {path}")
    try:
        model = onnx.load(str(path))
    except PermissionError:
        raise InputError(f"ONNX model is not readable: {path}") from None
    except Exception as exc:  # onnx raises DecodeError, ValueError, RuntimeError... on bad files
        raise InputError(f"not a valid ONNX model: {path} ({type(exc).__name__})") from None
    if not model.graph.node:
        raise InputError(f"not a valid ONNX model: {path} (empty graph)")
    return model


def inspect_model(path: str | Path) -> ModelInfo:
    """Inspect a recognition model; raise :class:`InputError` if it is not one.

    A recognition model has one image input ``[N, 3, H, W]`` with ``H == W``, at least
    112 and a multiple of 16 (InsightFace's routing rule), and one 2-D output ``[N, D]``.
    """
    path = Path(path)
    model = load_onnx(path)
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise InputError(f"{path}: a recognition model has one input, this one has {len(inputs)}")
    shape = _dims(inputs[0])
    ok = (
        len(shape) == 4
        and shape[1] == 3
        and isinstance(shape[2], int)
        and shape[2] == shape[3]
        and shape[2] >= 112
        and shape[2] % 16 == 0
    )
    if not ok:
        raise InputError(
            f"{path}: input '{inputs[0].name}' has shape {list(shape)}; "
            "a recognition model takes [N, 3, S, S] images with S >= 112"
        )
    if len(graph.output) != 1:
        raise InputError(f"{path}: a recognition model has one output, this one has {len(graph.output)}")
    out_shape = _dims(graph.output[0])
    if len(out_shape) != 2 or not isinstance(out_shape[1], int) or out_shape[1] < 1:
        raise InputError(
            f"{path}: output '{graph.output[0].name}' has shape {list(out_shape)}; "
            "a recognition model returns [N, D] embeddings"
        )
    mean, std = mean_std_from_graph(graph)
    return ModelInfo(
        path=str(path),
        name=path.stem,
        input_name=inputs[0].name,
        input_shape=shape,
        output_name=graph.output[0].name,
        embedding_dim=int(out_shape[1]),
        input_dtype=_dtype(inputs[0], path),
        output_dtype=_dtype(graph.output[0], path),
        input_mean=mean,
        input_std=std,
        sha256=sha256_file(path),
        dynamic_batch=not isinstance(shape[0], int),
    )
