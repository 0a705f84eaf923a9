"""TensorRT backend (placeholder until the TensorRT engines issue lands)."""

from __future__ import annotations

from arcface_trt.backends.base import Embedder
from arcface_trt.config import TensorrtConfig
from arcface_trt.errors import BackendUnavailableError
from arcface_trt.model.inspect import ModelInfo


def create_tensorrt_embedder(model: ModelInfo, device: str, batch_size: int, config: TensorrtConfig) -> Embedder:
    """Create the TensorRT embedder."""
    raise BackendUnavailableError("the tensorrt backend is not available in this version of arcface-trt")
