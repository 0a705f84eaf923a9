"""One drift-budget search from a request: the crop sets, the candidates, the evaluator, the search and its record.

The artifact builders (:mod:`.cpu`, :mod:`.tensorrt`, :mod:`.qdq`) share it: they look their cache up
with :func:`match_record`, run :func:`run_search` on a miss, check the artifact they made from the
chosen model once more (:func:`final_check`), and record :func:`manifest_record` beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arcface_trt.artifacts.cache import ArtifactCache
from arcface_trt.budget.candidates import Candidates, Fp16Candidates, Int8Candidates
from arcface_trt.budget.crops import (
    CropSet,
    calibration_set,
    calibration_settings_for_search,
    check_disjoint,
    evaluation_set,
)
from arcface_trt.budget.evaluate import MODE_PROXY, Evaluator, Measurement
from arcface_trt.budget.request import DriftBudgetRequest
from arcface_trt.budget.search import SENSITIVITY_CROPS, WITHIN_BUDGET, DriftSearch, SearchResult, Status, curve
from arcface_trt.budget.sensitivities import SensitivityCache
from arcface_trt.lazy import lazy_import
from arcface_trt.model.input_spec import InputSettings
from arcface_trt.model.inspect import ModelInfo
from arcface_trt.precision.int8 import CalibrationSettings, PreparedQuantization

ort = lazy_import("onnxruntime")

#: What a drift measured in the ``onnxruntime-proxy`` mode stands for, per precision.
PROXY_LABELS = {
    "int8": "ONNX Runtime with graph optimisations off (Q/DQ computed in float): a proxy of the TensorRT engine",
    "fp16": "ONNX Runtime with graph optimisations off (many fp16 nodes run through fp32 casts): a proxy of the "
    "TensorRT engine",
}


@dataclass(frozen=True)
class CropSets:
    """The calibration (int8 only) and evaluation crops of a search, checked disjoint."""

    calibration_settings: CalibrationSettings | None
    calibration: CropSet | None
    evaluation: CropSet

    @classmethod
    def load(cls, request: DriftBudgetRequest) -> CropSets:
        """Load both sets of ``request``; an InputError when a crop is in both."""
        evaluation = evaluation_set(request.evaluation)
        if request.precision != "int8":
            return cls(None, None, evaluation)
        settings = calibration_settings_for_search(request.calibration).resolved()
        calibration = calibration_set(settings)
        check_disjoint(calibration, evaluation)
        return cls(settings, calibration, evaluation)


def match_record(request: DriftBudgetRequest, mode: str, sets: CropSets) -> dict[str, Any]:
    """What an artifact must have been searched with to serve ``request`` (a part of its ``drift_budget`` record)."""
    return {
        "budget": request.budget,
        "evaluation_mode": mode,
        "calibration": sets.calibration.to_dict() if sets.calibration else None,
        "evaluation": sets.evaluation.to_dict(),
    }


@dataclass
class SearchOutcome:
    """A finished search: its result, and (when it passed) the chosen model file in the work folder."""

    result: SearchResult
    chosen: Path | None
    evaluator: Evaluator


def run_search(
    model: ModelInfo,
    source: Path,
    request: DriftBudgetRequest,
    mode: str,
    sets: CropSets,
    cache: ArtifactCache,
    work_dir: Path,
    inputs: InputSettings | None = None,
    on_status: Status | None = None,
) -> SearchOutcome:
    """Search ``source`` (the fp32 ``model``, or its dynamic-batch form) for ``request``; files go to ``work_dir``."""
    status = on_status or (lambda message: None)
    status(f"drift-budget search: fp32 reference on {len(sets.evaluation)} held-out crops ({mode})")
    evaluator = Evaluator(model, sets.evaluation, mode)
    candidates: Candidates
    if sets.calibration is None:  # fp16: nothing to calibrate
        candidates = Fp16Candidates(source, work_dir)
    else:
        status(f"calibrating on {len(sets.calibration)} crops")
        quantization = PreparedQuantization(source, sets.calibration_settings, inputs, work_dir, sets.calibration.crops)
        candidates = Int8Candidates(quantization)
    sensitivity_cache = SensitivityCache(
        cache,
        model.name,
        request.precision,
        mode,
        {
            "model": model.sha256,
            "precision": request.precision,
            "mode": mode,
            "input_spec": model.input_spec.key(),
            "calibration": sets.calibration_settings.to_dict() if sets.calibration_settings else None,
            "calibration_crops": sets.calibration.digest if sets.calibration else None,
            "evaluation_crops": sets.evaluation.digest,
            "sensitivity_crops": SENSITIVITY_CROPS,
            "groups": [list(group.nodes) for group in candidates.groups],
            "ort_version": ort.__version__,
        },
    )
    search = DriftSearch(candidates, evaluator, request.budget, sensitivity_cache, request.timeout_s, status)
    result = search.run()
    return SearchOutcome(result, search.chosen_file(result) if result.passed else None, evaluator)


def final_check(outcome: SearchOutcome, artifact: Path) -> Measurement:
    """The artifact made from the chosen model, measured once more on every evaluation crop."""
    return outcome.evaluator.measure(artifact)


def manifest_record(
    match: dict[str, Any], outcome: SearchOutcome, final: Measurement | None, kept_fp32_nodes: list[str]
) -> dict[str, Any]:
    """The ``drift_budget`` record of a manifest (and of ``--json``): request, nodes kept, curve, final check."""
    result = outcome.result
    return {
        **match,
        "proxy": PROXY_LABELS[result.precision] if result.evaluation_mode == MODE_PROXY else None,
        "status": result.status,
        "message": result.message,
        "kept_fp32_nodes": kept_fp32_nodes,
        "searched_nodes_kept": result.kept_nodes(),
        "always_kept": result.always_kept,
        "groups": len(result.groups),
        "sensitivities": [s.to_dict() for s in result.sensitivities],
        "sensitivities_from_cache": result.sensitivities_from_cache,
        "curve": curve(result),
        "final_check": (
            None if final is None else {**final.to_dict(), "within_budget": final.max_drift <= result.budget}
        ),
        "seconds": result.seconds,
    }


@dataclass
class Proposal:
    """A search's answer for an artifact made elsewhere (a TensorRT plan, a QDQ file).

    ``model``: the chosen model file, checked once more on every evaluation crop, when the search
    found a speedup within the budget (None otherwise: no speedup, nothing within it, or time ran out).
    """

    model: Path | None
    kept_fp32_nodes: list[str]
    record: dict[str, Any]


def propose(
    model: ModelInfo,
    source: Path,
    request: DriftBudgetRequest,
    sets: CropSets,
    cache: ArtifactCache,
    work_dir: Path,
    inputs: InputSettings | None = None,
    on_status: Status | None = None,
) -> Proposal:
    """:func:`run_search` in the ``onnxruntime-proxy`` mode, then the final check of the chosen model."""
    match = match_record(request, MODE_PROXY, sets)
    outcome = run_search(model, source, request, MODE_PROXY, sets, cache, work_dir, inputs, on_status)
    result = outcome.result
    kept = [*result.always_kept, *result.kept_nodes()]
    if outcome.chosen is None or result.status != WITHIN_BUDGET:
        return Proposal(None, kept, manifest_record(match, outcome, None, kept))
    return Proposal(outcome.chosen, kept, manifest_record(match, outcome, final_check(outcome, outcome.chosen), kept))
