"""Measuring one candidate of a drift-budget search: its worst-sample drift against fp32, and its speed.

The fp32 model is embedded once; each candidate gets one ONNX Runtime session that embeds every
evaluation crop, scored by :func:`arcface_trt.parity.score` (the project's one scoring core).
Two ways to run, named in every record:

- ``cpu-engine``: ONNX Runtime with every graph optimisation, as the CPU engine runs; the drift is
  the engine's own and the throughput is this machine's.
- ``onnxruntime-proxy``: graph optimisations off, for a model bound for TensorRT. A QDQ model then
  computes its quantize/dequantize steps in float instead of through the CPU's integer kernels, so
  no CPU-kernel effect steers the search; ONNX Runtime runs many fp16 nodes through fp32 casts. The
  drift is a proxy of the TensorRT engine's, and CPU speed says nothing about a GPU: none is recorded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arcface_trt.backends.ort_session import make_session
from arcface_trt.budget.crops import CropSet
from arcface_trt.model.inspect import ModelInfo
from arcface_trt.parity import score
from arcface_trt.preprocess import l2_normalize, preprocess
from arcface_trt.records import Record

MODE_ENGINE = "cpu-engine"
MODE_PROXY = "onnxruntime-proxy"
#: Crops per session call for a model with a dynamic batch.
EVALUATION_BATCH = 16


@dataclass(frozen=True)
class Measurement(Record):
    """One model on the evaluation crops: worst and mean drift (1 - cosine to fp32), and images/s when measured."""

    max_drift: float
    mean_drift: float
    crops: int
    #: Images per second of the session (``cpu-engine`` only; the first call is left out as a warm-up).
    throughput: float | None


class Evaluator:
    """The fp32 reference embeddings of a crop set, and the measurement of any model against them."""

    def __init__(self, model: ModelInfo, crops: CropSet, mode: str) -> None:
        self.model = model
        self.mode = mode
        self._data = preprocess(crops.crops, model.input_spec)
        self.reference, self.reference_throughput = self._embed(Path(model.path), None)

    @property
    def timed(self) -> bool:
        """Whether measurements carry a throughput (CPU engines; a TensorRT proxy's CPU speed means nothing)."""
        return self.mode == MODE_ENGINE

    def measure(self, model_path: Path, subset: Sequence[int] | None = None) -> Measurement:
        """Embed the crops (or the ``subset`` of their indices) with ``model_path`` and score them against fp32."""
        embeddings, throughput = self._embed(model_path, subset)
        reference = self.reference if subset is None else self.reference[list(subset)]
        stats, cosine = score(reference, embeddings, 0.0)
        return Measurement(
            max_drift=stats.max_drift,
            mean_drift=float(1.0 - cosine.mean()),
            crops=len(cosine),
            throughput=throughput if self.timed else None,
        )

    def _embed(self, model_path: Path, subset: Sequence[int] | None) -> tuple[np.ndarray, float]:
        """L2-normalised embeddings of the crops, and images/s over every call after the first."""
        data = self._data if subset is None else self._data[list(subset)]
        session = make_session(str(model_path), ["CPUExecutionProvider"], optimized=self.mode == MODE_ENGINE)
        step = EVALUATION_BATCH if self.model.dynamic_batch else int(self.model.input_shape[0])
        feeds = {}
        parts, timed_images, timed_seconds = [], 0, 0.0
        for index, start in enumerate(range(0, len(data), step)):
            chunk = data[start : start + step]
            real = len(chunk)
            if real < step and not self.model.dynamic_batch:  # a fixed batch: pad with the last crop
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], step - real, axis=0)])
            feeds[self.model.input_name] = chunk
            began = time.perf_counter()
            output = session.run([self.model.output_name], feeds)[0]
            elapsed = time.perf_counter() - began
            if index > 0 or len(data) <= step:
                timed_images, timed_seconds = timed_images + real, timed_seconds + elapsed
            parts.append(output[:real])
        throughput = timed_images / timed_seconds if timed_seconds > 0 else float("inf")
        return l2_normalize(np.concatenate(parts)), throughput
