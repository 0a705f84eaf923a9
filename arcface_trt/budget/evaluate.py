"""Measuring one candidate of a drift-budget search: its worst-sample drift against fp32, and its speed.

The fp32 model is embedded once; each candidate gets one ONNX Runtime session that embeds every
evaluation crop, scored by :func:`arcface_trt.parity.score` (the project's one scoring core).
Two ways to run, named in every record:

- ``cpu-engine``: ONNX Runtime with every graph optimisation, as the CPU engine runs; the drift is
  the engine's own. Its speed is timed against the fp32 model's, round-robin in the same process
  (:func:`arcface_trt.bench.timing.run_interleaved`), so load that comes and goes on a shared machine
  hits both alike: the ratio holds even when the images/s do not.
- ``onnxruntime-proxy``: graph optimisations off, for a model bound for TensorRT. A QDQ model then
  computes its quantize/dequantize steps in float instead of through the CPU's integer kernels, so
  no CPU-kernel effect steers the search; ONNX Runtime runs many fp16 nodes through fp32 casts. The
  drift is a proxy of the TensorRT engine's, and CPU speed says nothing about a GPU: none is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from arcface_trt.backends.ort_session import make_session
from arcface_trt.bench.stats import throughput
from arcface_trt.bench.timing import TimingPlan, ignore_result, run_interleaved
from arcface_trt.budget.crops import CropSet
from arcface_trt.model.inspect import ModelInfo
from arcface_trt.preprocess import l2_normalize, preprocess
from arcface_trt.records import Record

MODE_ENGINE = "cpu-engine"
MODE_PROXY = "onnxruntime-proxy"
#: Crops per session call for a model with a dynamic batch.
EVALUATION_BATCH = 16
#: Speed: this many crops per call, timed this many rounds against fp32 (after one untimed call each).
TIMING_BATCH = 8
TIMING_ROUNDS = 3


@dataclass(frozen=True)
class Measurement(Record):
    """One model on the evaluation crops: worst and mean drift (1 - cosine to fp32), and its speed when timed."""

    max_drift: float
    mean_drift: float
    crops: int
    #: Images/s of the candidate and of fp32, timed round-robin together (``cpu-engine`` only).
    throughput: float | None = None
    fp32_throughput: float | None = None


class Evaluator:
    """The fp32 reference embeddings of a crop set, and the measurement of any model against them."""

    def __init__(self, model: ModelInfo, crops: CropSet, mode: str) -> None:
        self.model = model
        self.mode = mode
        self._data = preprocess(crops.crops, model.input_spec)
        self._reference_session = self._session(Path(model.path))
        self.reference = self._embed(self._reference_session, self._data)

    @property
    def timed(self) -> bool:
        """Whether measurements carry a speed (CPU engines; a TensorRT proxy's CPU speed means nothing)."""
        return self.mode == MODE_ENGINE

    def measure(self, model_path: Path, subset: Sequence[int] | None = None) -> Measurement:
        """Embed the crops (or the ``subset`` of their indices) with ``model_path`` and score them against fp32.

        Every crop measured is also timed against fp32 in the ``cpu-engine`` mode; a subset (a sensitivity) is not.
        """
        session = self._session(model_path)
        data = self._data if subset is None else self._data[list(subset)]
        reference = self.reference if subset is None else self.reference[list(subset)]
        # The rows' dot products as they are, not compare's renormalised cosines: the float32 normalisation of
        # both embeddings (about 1e-7) stays in every figure, so the drift floor is the fp32 engine's own and a
        # budget below it is one no candidate meets (docs/precision.md).
        embedded = self._embed(session, data)
        cosine = np.sum(reference.astype(np.float64) * embedded.astype(np.float64), axis=1)
        speed: dict[str, float] = {}
        if self.timed and subset is None:
            speed = self._speed(session)
        return Measurement(
            max_drift=float(1.0 - cosine.min()),
            mean_drift=float(1.0 - cosine.mean()),
            crops=len(cosine),
            throughput=speed.get("candidate"),
            fp32_throughput=speed.get("fp32"),
        )

    def _session(self, model_path: Path) -> Any:
        return make_session(str(model_path), ["CPUExecutionProvider"], optimized=self.mode == MODE_ENGINE)

    def _feeds(self, data: np.ndarray) -> list[np.ndarray]:
        """``data`` in session calls: chunks of :data:`EVALUATION_BATCH`, or of a fixed batch (padded)."""
        step = EVALUATION_BATCH if self.model.dynamic_batch else int(self.model.input_shape[0])
        chunks = []
        for start in range(0, len(data), step):
            chunk = data[start : start + step]
            if len(chunk) < step and not self.model.dynamic_batch:  # a fixed batch: pad with the last crop
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], step - len(chunk), axis=0)])
            chunks.append(chunk)
        return chunks

    def _embed(self, session: Any, data: np.ndarray) -> np.ndarray:
        """L2-normalised embeddings of ``data``."""
        names = [self.model.output_name]
        parts = [session.run(names, {self.model.input_name: chunk})[0] for chunk in self._feeds(data)]
        return l2_normalize(np.concatenate(parts)[: len(data)])

    def _speed(self, session: Any) -> dict[str, float]:
        """Images/s of ``session`` and of fp32 on one batch, timed round-robin."""
        batch = self._feeds(self._data[:TIMING_BATCH])[0]
        feeds = {self.model.input_name: batch}
        names = [self.model.output_name]
        reference = self._reference_session
        samples = run_interleaved(
            {
                "fp32": ignore_result(lambda: reference.run(names, feeds)),
                "candidate": ignore_result(lambda: session.run(names, feeds)),
            },
            TimingPlan(iterations=TIMING_ROUNDS, warmup_s=0.0),
        )
        return {name: throughput(len(batch), values.host_ms) for name, values in samples.items()}
