"""Triton for tests: its own model-config schema, and a stand-in gRPC server for ONNX model folders.

:func:`parse_config` reads a ``config.pbtxt`` with Triton's ``model_config.proto``
(``tritonclient.grpc.model_config_pb2``) through protobuf's text format, so an unknown field or
enum value fails as it does in ``tritonserver``.

:class:`OnnxTritonServer` answers Triton's gRPC ``ModelInfer`` (KServe v2, what ``tritonclient``
sends) for the ``onnxruntime_onnx`` folders of a model repository: it checks a request against the
folder's ``config.pbtxt`` as Triton does (model name, input names, datatypes, dims without the
batch dimension, ``max_batch_size``) and runs ``1/model.onnx`` with ONNX Runtime. It lets the
tests run a README's ``tritonclient`` snippet end to end without a Triton server.
"""

from __future__ import annotations

from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import onnxruntime as ort
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc

#: Triton datatype strings (``FP32``) of numpy element types, and back.
_DATATYPES = {"FP32": np.float32, "FP16": np.float16, "INT8": np.int8, "UINT8": np.uint8, "INT32": np.int32}


def parse_config(text: str) -> Any:
    """``config.pbtxt`` text as Triton's ``inference.ModelConfig``; protobuf's ParseError on anything else."""
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def read_config(folder: Path) -> Any:
    """The parsed ``config.pbtxt`` of a model folder."""
    return parse_config((Path(folder) / "config.pbtxt").read_text(encoding="utf-8"))


def data_type_name(value: int) -> str:
    """``TYPE_FP32`` for the enum number of a parsed config."""
    return model_config_pb2.DataType.Name(value)


class _Servicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    """The ``ModelInfer`` method of Triton's gRPC service, for ONNX Runtime folders."""

    def __init__(self, repository: Path) -> None:
        self.repository = repository
        self.requests: list[Any] = []

    def _model(self, name: str, context: Any) -> tuple[Any, Any]:
        folder = self.repository / name
        if not (folder / "config.pbtxt").is_file():
            context.abort(grpc.StatusCode.NOT_FOUND, f"Request for unknown model: '{name}' is not found")
        config = read_config(folder)
        if config.platform != "onnxruntime_onnx":
            context.abort(grpc.StatusCode.UNAVAILABLE, f"this stand-in serves onnxruntime_onnx, not {config.platform}")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(folder / "1" / "model.onnx"), options, providers=["CPUExecutionProvider"])
        return config, session

    def ModelInfer(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        config, session = self._model(request.model_name, context)
        declared = {i.name: i for i in config.input}
        feeds = {}
        for index, tensor in enumerate(request.inputs):
            spec = declared.get(tensor.name)
            if spec is None:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unexpected inference input '{tensor.name}'")
            if f"TYPE_{tensor.datatype}" != data_type_name(spec.data_type):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"input '{tensor.name}' has datatype {tensor.datatype}")
            shape = list(tensor.shape)
            dims = shape[1:] if config.max_batch_size > 0 else shape
            if dims != list(spec.dims) or (config.max_batch_size > 0 and not 1 <= shape[0] <= config.max_batch_size):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"input '{tensor.name}' has shape {shape}")
            raw = np.frombuffer(request.raw_input_contents[index], dtype=_DATATYPES[tensor.datatype])
            feeds[tensor.name] = raw.reshape(shape)
        if set(feeds) != set(declared):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"expected inputs {sorted(declared)}")
        wanted = [o.name for o in request.outputs] or [o.name for o in config.output]
        unknown = set(wanted) - {o.name for o in config.output}
        if unknown:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unexpected inference output {sorted(unknown)}")
        results = session.run(wanted, feeds)
        response = service_pb2.ModelInferResponse(model_name=request.model_name, model_version="1")
        for name, value in zip(wanted, results, strict=True):
            datatype = next(k for k, v in _DATATYPES.items() if np.dtype(v) == value.dtype)
            response.outputs.add(name=name, datatype=datatype, shape=list(value.shape))
            response.raw_output_contents.append(np.ascontiguousarray(value).tobytes())
        return response


class OnnxTritonServer:
    """A gRPC server on 127.0.0.1 answering ``ModelInfer`` for a repository's ONNX Runtime folders."""

    def __init__(self, repository: Path) -> None:
        self.servicer = _Servicer(Path(repository))
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(self.servicer, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    @property
    def url(self) -> str:
        """``host:port`` for ``tritonclient.grpc.InferenceServerClient``."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> OnnxTritonServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)
