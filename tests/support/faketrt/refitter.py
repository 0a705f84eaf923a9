"""Weight stripping and refit: what ``STRIP_PLAN`` leaves out of a plan, ``Refitter`` and ``OnnxParserRefitter``.

- :func:`strip_weights`: under ``STRIP_PLAN`` the plan keeps the graph and only the weights TensorRT
  needs for performance; the fake's rule: every float or int8 initializer is refittable and stripped
  (its name, type and dims stay), except the scales and zero points of Q/DQ nodes (explicit
  quantization bakes them into the kernels) and integer constants (shapes). The plan is much smaller,
  not weightless.
- ``Refitter(engine, logger)``: ``get_all_weights`` names the refittable weights of a refittable engine
  (none of another); ``refit_cuda_engine`` fails, naming them, while any is missing, and on an engine
  that was not built refittable. With ``REFIT_IDENTICAL`` TensorRT assumes the build's own weights:
  other values of the right shape are taken as they are (undefined behaviour on a GPU), so only the
  application's check of the ONNX catches them.
- ``OnnxParserRefitter(refitter, logger).refit_from_file(path)``: reads the ONNX (with its external
  data) and sets every refittable weight it holds; a weight of another shape or type is a
  ``REFIT_FAILED`` error (``num_errors`` / ``get_error``) and ``False``. Weights the file lacks stay missing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.support.faketrt.logger import log
from tests.support.faketrt.parser import ParserErrors
from tests.support.faketrt.strict import Strict

#: ONNX element types of refittable weights: FLOAT, INT8, FLOAT16, DOUBLE, BFLOAT16.
REFITTABLE_TYPES = {1, 3, 10, 11, 16}
#: Builder flags that make an engine refittable.
REFIT_FLAGS = ("REFIT", "REFIT_IDENTICAL", "REFIT_INDIVIDUAL", "STRIP_PLAN")
_QDQ = ("QuantizeLinear", "DequantizeLinear")


def refittable_names(model: Any) -> list[str]:
    """The initializers of ``model`` (an ``onnx.ModelProto``) TensorRT refits (see the module docstring)."""
    kept = {name for node in model.graph.node if node.op_type in _QDQ for name in node.input[1:]}
    return [
        init.name for init in model.graph.initializer if init.data_type in REFITTABLE_TYPES and init.name not in kept
    ]


def strip_weights(onnx_bytes: bytes) -> tuple[bytes, list[str]]:
    """The ONNX with its refittable initializers emptied (name, type and dims kept), and their names."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    names = set(refittable_names(model))
    for init in model.graph.initializer:
        if init.name in names:
            empty = onnx.TensorProto(name=init.name, data_type=init.data_type, dims=list(init.dims))
            init.CopyFrom(empty)
    return model.SerializeToString(), sorted(names)


def fill_weights(onnx_bytes: bytes, weights: dict[str, np.ndarray]) -> bytes:
    """The stripped ONNX with ``weights`` put back."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(onnx_bytes)
    for init in model.graph.initializer:
        if init.name in weights:
            init.CopyFrom(numpy_helper.from_array(weights[init.name], init.name))
    return model.SerializeToString()


class Refitter(Strict):
    """Collects new weights for a refittable engine and refits it."""

    def __init__(self, engine: Any, logger: Any) -> None:
        self._engine, self._logger = engine, logger
        self._weights: dict[str, np.ndarray] = {}

    def get_all_weights(self) -> list[str]:
        return sorted(self._engine._weight_specs) if self._engine.refittable else []

    def get_missing_weights(self) -> list[str]:
        return [name for name in self.get_all_weights() if name not in self._weights]

    def _set(self, name: str, value: np.ndarray) -> str | None:
        """Take one weight; the reason when it cannot be taken (not refittable, other shape or type)."""
        spec = self._engine._weight_specs.get(name)
        if spec is None:
            return None  # a weight the engine does not refit (a Q/DQ scale, a shape): ignored, as TensorRT does
        dims, dtype = spec
        if tuple(value.shape) != dims or value.dtype != dtype:
            return f"weights '{name}' have shape {list(value.shape)} {value.dtype}, the engine {list(dims)} {dtype}"
        self._weights[name] = value
        return None

    def refit_cuda_engine(self) -> bool:
        engine = self._engine
        if not engine.refittable:
            log(self._env, self._logger, "ERROR", "IRefitter::refitCudaEngine: Error Code 3: API Usage Error "
                "(the engine was not built refittable: set BuilderFlag::kREFIT or kREFIT_IDENTICAL)")  # fmt: skip
            return False
        missing = self.get_missing_weights()
        if missing:
            log(self._env, self._logger, "ERROR", "IRefitter::refitCudaEngine: Error Code 3: API Usage Error "
                f"(missing weights: {', '.join(missing)})")  # fmt: skip
            return False
        engine._refit(self._weights)
        return True


class OnnxParserRefitter(ParserErrors):
    """Refits from an ONNX file, as the parser named its weights."""

    def __init__(self, refitter: Refitter, logger: Any) -> None:
        self._refitter, self._logger, self._errors = refitter, logger, []

    def refit_from_file(self, model: str) -> bool:
        import onnx
        from onnx import numpy_helper

        try:
            proto = onnx.load(model)
        except Exception:
            self._error("MODEL_DESERIALIZE_FAILED", f"Failed to parse ONNX model from file {model}")
            return False
        for init in proto.graph.initializer:
            problem = self._refitter._set(init.name, numpy_helper.to_array(init))
            if problem is not None:
                self._error("REFIT_FAILED", problem)
        if self._errors:
            log(self._env, self._logger, "ERROR", f"ModelImporter.cpp: {self._errors[0].desc()}")
            return False
        return True
