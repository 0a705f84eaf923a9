"""``OnnxParser`` and ``ParserError``: loads the ONNX, applies the parser's rules, fills the network.

Ops outside the default ONNX domain are UNSUPPORTED_NODE ("No importer registered");
Q/DQ nodes follow :mod:`tests.support.faketrt.qdq`. Every error is kept for ``get_error``
and the first is logged, as the real parser does.
"""

from __future__ import annotations

from typing import Any

from tests.support.faketrt import qdq
from tests.support.faketrt.logger import log
from tests.support.faketrt.network import INetworkDefinition, ITensor
from tests.support.faketrt.strict import Strict

#: ONNX element type -> TensorRT DataType member name.
ONNX_TO_TRT = {1: "FLOAT", 10: "HALF", 3: "INT8", 6: "INT32", 9: "BOOL", 2: "UINT8", 7: "INT64", 16: "BF16"}


class ParserError(Strict):
    """One error the parser recorded."""

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


class ParserErrors(Strict):
    """The errors a parser (or the parser's refitter) recorded: ``num_errors``, ``get_error``, ``clear_errors``."""

    _errors: list[ParserError]

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> ParserError:
        return self._errors[index]

    def clear_errors(self) -> None:
        self._errors = []

    def _error(self, code: str, desc: str, node: int = -1, name: str = "", op: str = "") -> None:
        env = self._env
        self._errors.append(env.new("ParserError", getattr(env.enum("ErrorCode"), code), desc, node, name, op))


class OnnxParser(ParserErrors):
    """Parses an ONNX model into a network."""

    def __init__(self, network: INetworkDefinition, logger: Any) -> None:
        self._network, self._logger, self._errors = network, logger, []

    def _tensor(self, value_info: Any) -> ITensor:
        dims = value_info.type.tensor_type.shape.dim
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
        kind = ONNX_TO_TRT.get(value_info.type.tensor_type.elem_type, "FLOAT")
        return self._env.new("ITensor", value_info.name, shape, getattr(self._env.enum("DataType"), kind))

    def parse(self, model: Any, path: str | None = None) -> bool:
        import onnx

        data = bytes(model)
        try:
            proto = onnx.load_from_string(data)
        except Exception:
            self._error("MODEL_DESERIALIZE_FAILED", "Failed to parse ONNX model from file")
            log(self._env, self._logger, "ERROR", "ModelImporter.cpp: Failed to parse ONNX model")
            return False
        for i, node in enumerate(proto.graph.node):
            if node.domain not in ("", "ai.onnx"):
                desc = f"No importer registered for op: {node.op_type}. Attempting to import as plugin."
                self._error("UNSUPPORTED_NODE", desc, i, node.name, node.op_type)
        if not self._errors:
            for finding in qdq.check(proto):
                if finding.code is None:
                    log(self._env, self._logger, "WARNING", finding.message)
                else:
                    self._error(finding.code, finding.message, finding.node, finding.node_name, finding.op)
        if self._errors:
            first = self._errors[0]
            log(self._env, self._logger, "ERROR", f"ModelImporter.cpp: {first.desc()}")
            return False
        inits = {init.name for init in proto.graph.initializer}
        self._network._inputs = [self._tensor(v) for v in proto.graph.input if v.name not in inits]
        self._network._outputs = [self._tensor(v) for v in proto.graph.output]
        self._network._onnx = data
        return True
