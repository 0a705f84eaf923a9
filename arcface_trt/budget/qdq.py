"""``quantize --drift-budget``: the QDQ model (for TensorRT) that keeps the fewest nodes in float within a budget.

The search runs in the ``onnxruntime-proxy`` mode, as for a TensorRT plan; its sensitivities are
kept in the artifact cache (a new budget reuses them). The chosen model is written to ``--out``
only when it is within the budget and quantizes something: an answer with every group in float
is "no speedup available" (the fp32 model is the answer), and nothing is written.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arcface_trt.artifacts.cache import ArtifactCache
from arcface_trt.budget.request import DriftBudgetRequest
from arcface_trt.budget.run import CropSets, propose
from arcface_trt.budget.search import Status
from arcface_trt.fileio import copy_file_atomic
from arcface_trt.model.input_spec import InputSettings
from arcface_trt.model.inspect import inspect_model
from arcface_trt.paths import engine_cache_root


@dataclass
class BudgetedQdq:
    """Where the chosen QDQ model was written (None when nothing was) and the search record."""

    path: Path | None
    search: dict[str, Any]


def quantize_within_budget(
    onnx_path: str | Path,
    out: Path,
    request: DriftBudgetRequest,
    *,
    cache_dir: str | Path | None = None,
    inputs: InputSettings | None = None,
    on_status: Status | None = None,
) -> BudgetedQdq:
    """Search ``onnx_path`` for ``request`` and write the chosen QDQ model to ``out`` atomically."""
    sets = CropSets.load(request)
    model = inspect_model(onnx_path, inputs)
    cache = ArtifactCache(engine_cache_root(cache_dir))
    with tempfile.TemporaryDirectory(prefix="arcface-trt-budget-") as tmp:
        proposal = propose(model, Path(onnx_path), request, sets, cache, Path(tmp), inputs, on_status)
        if proposal.model is not None:
            copy_file_atomic(proposal.model, out)
    return BudgetedQdq(out if proposal.model is not None else None, proposal.record)
