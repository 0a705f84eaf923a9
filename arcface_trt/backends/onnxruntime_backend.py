"""The project's own ONNX Runtime backend."""

from __future__ import annotations

from typing import Any

import numpy as np

from arcface_trt.backends.base import BackendInfo, Embedder, budget_summary
from arcface_trt.backends.ort_session import make_session
from arcface_trt.errors import BackendUnavailableError
from arcface_trt.model.input_spec import InputSettings
from arcface_trt.precision.cpu_engine import ensure_cpu_engine


class OnnxRuntimeEmbedder(Embedder):
    """ONNX Runtime session with provider selection, full graph optimisation and batching."""

    name = "onnxruntime"

    def __init__(
        self,
        *args: Any,
        threads: int | None = None,
        cpu_engine: str | None = None,
        engine_cache_dir: str | None = None,
        keep_fp32_nodes: tuple[str, ...] | None = None,
        inputs: InputSettings | None = None,
        drift_budget: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.threads = threads
        self.session: Any = None
        #: Precision of the cached CPU engine to run (None: the ONNX model as it is).
        self.cpu_engine = cpu_engine
        self.engine_cache_dir = engine_cache_dir
        self.keep_fp32_nodes = keep_fp32_nodes
        #: The explicit input settings the model was inspected with (an int8 engine is calibrated through them).
        self.inputs = inputs
        self.engine_path: str | None = None
        #: Run the CPU engine made for this drift budget (from the cache); its manifest's record once loaded.
        self.drift_budget = drift_budget
        self.budget_record: dict[str, Any] | None = None
        if cpu_engine is not None:
            self.precision = cpu_engine

    def _load(self) -> None:
        path = self.model.path
        if self.cpu_engine is not None:
            path = self.engine_path = self._cpu_engine_path()
        self.session = self._open_onnxruntime(lambda providers: make_session(path, providers, self.threads))

    def _cpu_engine_path(self) -> str:
        """The cached CPU engine of this model at ``self.cpu_engine`` (built when absent or stale).

        With a drift budget, the budget's engine: from the cache only (a search builds it).
        """
        if self.device not in ("auto", "cpu"):
            raise BackendUnavailableError(
                f"the {self.cpu_engine} CPU engine runs on the CPU only, not on device '{self.device}' "
                "(use --device cpu, or the tensorrt backend on a GPU)"
            )
        # The ORT-optimised engine holds CPU-only fused operators: never hand it to a GPU provider.
        self.device = "cpu"
        engine = ensure_cpu_engine(
            self.model.path,
            self.cpu_engine,  # type: ignore[arg-type]
            keep_fp32_nodes=self.keep_fp32_nodes,
            cache_dir=self.engine_cache_dir,
            inputs=self.inputs,
            drift_budget=self.drift_budget,
        )
        self.budget_record = engine.manifest.drift_budget
        return str(engine.path)

    def info(self) -> BackendInfo:
        """The base record, plus the CPU engine's path when one runs."""
        record = super().info()
        record.engine_path = self.engine_path
        record.drift_budget = budget_summary(self.budget_record)
        return record

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """One ``session.run`` on a preprocessed batch."""
        self.ensure_ready()
        return self.session.run([self.model.output_name], {self.model.input_name: batch})[0]
