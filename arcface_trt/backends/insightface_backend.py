"""The reference backend: InsightFace's own ``ArcFaceONNX`` class, with explicit providers."""

from __future__ import annotations

from typing import Any

import numpy as np

from arcface_trt.backends.base import Embedder
from arcface_trt.backends.ort_session import session_options
from arcface_trt.errors import InputError
from arcface_trt.lazy import lazy_import

model_zoo = lazy_import("insightface.model_zoo")


class InsightFaceEmbedder(Embedder):
    """Embeddings exactly as ``insightface.model_zoo.ArcFaceONNX.get_feat`` computes them."""

    name = "insightface"

    def __init__(self, *args: Any, threads: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arcface: Any = None
        #: Intra-op threads of the session; None keeps InsightFace's (ONNX Runtime's) default.
        self.threads = threads

    def _create(self, providers: list[str]) -> Any:
        get_model = model_zoo.get_model  # a missing insightface is its install hint, not a model error
        options = {} if self.threads is None else {"sess_options": session_options(self.threads)}
        try:
            arcface = get_model(self.model.path, providers=providers, **options)
        except Exception as exc:  # insightface asserts and ORT errors on unusable models
            raise InputError(f"insightface cannot load {self.model.path}: {exc}") from None
        if arcface is None or getattr(arcface, "taskname", None) != "recognition":
            raise InputError(f"insightface does not route {self.model.path} to a recognition model")
        self.arcface = arcface
        return arcface.session

    def _load(self) -> None:
        self._open_onnxruntime(self._create)

    def _embed_chunk(self, crops: list[np.ndarray]) -> np.ndarray:
        # InsightFace's own preprocessing and session call: this is what "reference" means.
        return self.arcface.get_feat(crops)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Run the InsightFace session on an already preprocessed batch."""
        self.ensure_ready()
        return self.arcface.session.run(self.arcface.output_names, {self.arcface.input_name: batch})[0]
