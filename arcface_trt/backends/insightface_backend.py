"""The reference backend: InsightFace's own ``ArcFaceONNX`` class, with explicit providers and the model's input spec.

InsightFace's ``get_feat`` takes a scalar mean and std and always swaps BGR to RGB. When the
model's input spec fits that, the reference is ``ArcFaceONNX.get_feat`` with the spec's mean and
std set on the model object. When it does not (a BGR model, per-channel mean or std), the
reference runs the same model through ONNX Runtime on the CPU with the toolkit's preprocessing,
and ``info().reference`` says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from arcface_trt.backends.base import BackendInfo, Embedder
from arcface_trt.backends.ort_session import make_session, session_options
from arcface_trt.errors import InputError
from arcface_trt.lazy import lazy_import

model_zoo = lazy_import("insightface.model_zoo")

#: How the reference computes (``info().reference``).
REFERENCE_GET_FEAT = "insightface ArcFaceONNX.get_feat"
REFERENCE_ORT_CPU = "onnxruntime-cpu, spec not expressible in InsightFace"


class InsightFaceEmbedder(Embedder):
    """Embeddings as ``insightface.model_zoo.ArcFaceONNX.get_feat`` computes them with the model's input spec."""

    name = "insightface"

    def __init__(self, *args: Any, threads: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arcface: Any = None
        self.expressible = self.model.input_spec.expressible_in_insightface
        if not self.expressible:
            self.device = "cpu"  # the reference is then ONNX Runtime on the CPU, whatever was asked
        #: Intra-op threads of the session; None keeps InsightFace's (ONNX Runtime's) default.
        self.threads = threads

    def _routed(self, providers: list[str]) -> Any:
        """``get_model``'s object when it routes the file to its recognition model, else None."""
        get_model = model_zoo.get_model  # a missing insightface is its install hint, not a model error
        options = {} if self.threads is None else {"sess_options": session_options(self.threads)}
        try:
            routed = get_model(self.model.path, providers=providers, **options)
        except Exception as exc:  # insightface asserts and ORT errors on unusable models
            raise InputError(f"insightface cannot load {self.model.path}: {exc}") from None
        return routed if getattr(routed, "taskname", None) == "recognition" else None

    def _create(self, providers: list[str]) -> Any:
        arcface = self._routed(providers)
        if arcface is None:
            # get_model sends 96x96 inputs to its attribute model, 192x192 to its landmark model, and
            # returns nothing for sides it does not route (150): the recognition class itself takes them all.
            session = make_session(self.model.path, providers, self.threads)
            arcface = model_zoo.ArcFaceONNX(model_file=self.model.path, session=session)
        if self.expressible:
            spec = self.model.input_spec
            arcface.input_mean, arcface.input_std = spec.mean[0], spec.std[0]
        self.arcface = arcface
        return arcface.session

    def _load(self) -> None:
        self._open_onnxruntime(self._create)

    def _embed_chunk(self, crops: list[np.ndarray]) -> np.ndarray:
        if self.expressible:
            # InsightFace's own preprocessing and session call: this is what "reference" means.
            return self.arcface.get_feat(crops)
        return self.forward(self.preprocess(crops))

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Run the InsightFace session on an already preprocessed batch."""
        self.ensure_ready()
        return self.arcface.session.run(self.arcface.output_names, {self.arcface.input_name: batch})[0]

    def info(self) -> BackendInfo:
        """The base record, plus how the reference computes."""
        record = super().info()
        record.reference = REFERENCE_GET_FEAT if self.expressible else REFERENCE_ORT_CPU
        return record
