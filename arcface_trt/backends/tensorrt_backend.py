"""The ``tensorrt`` backend: a cached (or fetched, or freshly built) plan run by :class:`TrtRunner`.

Preprocessing is the shared function of :class:`~arcface_trt.backends.base.Embedder`,
so parity against the reference measures the engine alone. Every reason it cannot
run here (disabled in the config, no TensorRT, no cuda-python, no driver, no GPU,
a plan that does not deserialize) is a :class:`BackendUnavailableError`; the factory
in :mod:`arcface_trt.backends` turns it into the reported CPU fallback when
``allow_cpu_fallback`` is set.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from arcface_trt.backends.base import BackendInfo, Embedder
from arcface_trt.config import TensorrtConfig
from arcface_trt.errors import BackendUnavailableError
from arcface_trt.model.inspect import ModelInfo

log = logging.getLogger("arcface_trt")


class TensorrtEmbedder(Embedder):
    """Embeddings from a TensorRT engine built for this GPU and TensorRT version."""

    name = "tensorrt"

    def __init__(self, model: ModelInfo, device: str, batch_size: int, config: TensorrtConfig) -> None:
        super().__init__(model, device, False, batch_size, precision=config.tensorrt.precision)
        self.config = config
        self.runner: Any = None
        self.engine_path: str | None = None
        self.engine_source: str | None = None
        self.gpu_name: str | None = None

    def _load(self) -> None:
        from arcface_trt.engine.build import ensure_engine
        from arcface_trt.engine.runtime import TrtRunner

        if self.device not in ("auto", "cuda"):
            raise BackendUnavailableError(f"the tensorrt backend runs on an NVIDIA GPU, not on device '{self.device}'")
        result = ensure_engine(self.model.path, self.config.tensorrt, on_status=lambda m: log.info("%s", m))
        self.runner = TrtRunner(result.plan_path)
        self.engine_path = str(result.plan_path)
        self.engine_source = result.source
        self.gpu_name = result.manifest.gpu_name
        self.providers = [f"TensorRT {self.runner.trt_version}"]

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Run one preprocessed batch through the engine (chunked above its max batch)."""
        self.ensure_ready()
        return self.runner.infer(batch)

    def info(self) -> BackendInfo:
        """Backend ``tensorrt`` with the engine path and precision."""
        return BackendInfo(
            backend=self.name,
            requested_backend=self.requested_backend,
            device=f"cuda ({self.gpu_name})" if self.gpu_name else "cuda",
            model_path=self.model.path,
            precision=self.precision,
            providers=list(self.providers),
            engine_path=self.engine_path,
            fallback_reason=self.fallback_reason,
            embedding_dim=self.model.embedding_dim,
            batch_size=self.batch_size,
        )


def create_tensorrt_embedder(model: ModelInfo, device: str, batch_size: int, config: TensorrtConfig) -> Embedder:
    """The TensorRT embedder, or :class:`BackendUnavailableError` when TensorRT is disabled in the config.

    Availability of TensorRT, cuda-python and a GPU is checked by ``ensure_ready()``.
    """
    if not config.arcface_tensorrt.enabled:
        where = config.source or "the TensorRT config"
        raise BackendUnavailableError(
            f"TensorRT is disabled (arcface_tensorrt.enabled is false in {where}); "
            "set it to true to use the tensorrt backend"
        )
    return TensorrtEmbedder(model, device, batch_size, config)
