"""The ``tensorrt`` backend: a cached (or fetched, or freshly built) plan run by :class:`TrtRunner`.

The plan is the exact one for this GPU and TensorRT version when the cache or the store has it, else a
compatible one (``sm80+``, version-compatible, or weight-stripped and refit from the local ONNX): the
engine build says which it took (a warning for another arch or TensorRT version).

Preprocessing is the shared function of :class:`~arcface_trt.backends.base.Embedder`,
so parity against the reference measures the engine alone. Every reason it cannot
run here (no TensorRT, no cuda-python, no driver, no GPU, a plan that does not
deserialize) is a :class:`BackendUnavailableError`; the factory
in :mod:`arcface_trt.backends` turns it into the reported CPU fallback when
``allow_cpu_fallback`` is set.
"""

from __future__ import annotations

import logging

import numpy as np

from arcface_trt.backends.base import BackendInfo, DeviceTimer, Embedder, budget_summary
from arcface_trt.backends.spec import BackendSpec
from arcface_trt.engine.build import ensure_engine
from arcface_trt.engine.runtime import TrtRunner
from arcface_trt.errors import BackendUnavailableError
from arcface_trt.model.inspect import ModelInfo
from arcface_trt.store.engines import store_fetcher

log = logging.getLogger("arcface_trt")


class TensorrtEmbedder(Embedder):
    """Embeddings from a TensorRT engine built for this GPU and TensorRT version."""

    name = "tensorrt"

    def __init__(self, model: ModelInfo, spec: BackendSpec) -> None:
        super().__init__(model, spec.device, False, spec.batch_size, precision=spec.tensorrt.tensorrt.precision)
        self.spec = spec
        self.runner: TrtRunner | None = None
        self.engine_path: str | None = None
        self.engine_source: str | None = None
        self.gpu_name: str | None = None
        self.budget_record: dict | None = None

    def _load(self) -> None:
        if self.device not in ("auto", "cuda"):
            raise BackendUnavailableError(f"the tensorrt backend runs on an NVIDIA GPU, not on device '{self.device}'")
        settings = self.spec.tensorrt.tensorrt
        result = ensure_engine(
            self.model.path,
            settings,
            keep_fp32_nodes=self.spec.keep_fp32_nodes,
            on_status=lambda m: log.info("%s", m),
            fetcher=store_fetcher(settings) if settings.engine_s3_bucket else None,
            inputs=self.spec.inputs,
            drift_budget=self.spec.drift_budget,
        )
        self.budget_record = result.manifest.drift_budget
        self.runner = TrtRunner(result.plan_path, load=result.load)
        self.engine_path = str(result.plan_path)
        self.engine_source = result.source
        self.gpu_name = result.manifest.gpu_name
        self.providers = [f"TensorRT {self.runner.trt_version}"]

    @property
    def on_gpu(self) -> bool:
        """A TensorRT engine always runs on the GPU."""
        return True

    def device_timer(self) -> DeviceTimer | None:
        """The engine's runner: CUDA-event timing, compute-only runs, the engine's device memory."""
        self.ensure_ready()
        return self.runner

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Run one preprocessed batch through the engine (chunked above its max batch)."""
        self.ensure_ready()
        return self.runner.infer(batch)  # type: ignore[union-attr]

    def info(self) -> BackendInfo:
        """Backend ``tensorrt`` with the engine path and precision."""
        record = super().info()
        record.device = f"cuda ({self.gpu_name})" if self.gpu_name else "cuda"
        record.engine_path = self.engine_path
        record.drift_budget = budget_summary(self.budget_record)
        return record
