"""The project's own ONNX Runtime backend."""

from __future__ import annotations

from typing import Any

import numpy as np

from arcface_trt.backends.base import Embedder
from arcface_trt.backends.ort_session import make_session


class OnnxRuntimeEmbedder(Embedder):
    """ONNX Runtime session with provider selection, full graph optimisation and batching."""

    name = "onnxruntime"

    def __init__(self, *args: Any, threads: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.threads = threads
        self.session: Any = None

    def _load(self) -> None:
        self.session = self._open_onnxruntime(
            lambda providers: make_session(self.model.path, providers, self.threads)
        )

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """One ``session.run`` on a preprocessed batch."""
        self.ensure_ready()
        return self.session.run([self.model.output_name], {self.model.input_name: batch})[0]
