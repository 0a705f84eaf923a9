"""What a drift-budget search is asked for: the budget, the precision, the crop sets and a time limit."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from arcface_trt.budget.crops import EvaluationSettings
from arcface_trt.errors import InputError
from arcface_trt.precision.int8 import CalibrationSettings

#: Precisions a budget applies to (fp32 has no drift to budget).
BUDGET_PRECISIONS = ("fp16", "int8")


def check_budget(budget: float) -> float:
    """``budget`` when it is a drift a search can aim at: a number in (0, 2) (1 - cosine lies in [0, 2])."""
    if not isinstance(budget, int | float) or not math.isfinite(budget) or not 0.0 < budget < 2.0:
        raise InputError(f"--drift-budget must be a number in (0, 2) (1 - cosine of the worst sample), got {budget}")
    return float(budget)


def budget_for(precision: str | None, drift_budget: float | None) -> float | None:
    """The budget an engine of ``precision`` is selected by: ``drift_budget`` for fp16 and int8, None for fp32.

    Commands that take several precisions ask this per precision; with one precision, a budget for
    fp32 (or no precision) is an InputError.
    """
    if drift_budget is None:
        return None
    if precision not in BUDGET_PRECISIONS:
        raise InputError(f"--drift-budget applies to --precision fp16 or int8, got {precision or 'none'}")
    return check_budget(drift_budget)


@dataclass(frozen=True)
class DriftBudgetRequest:
    """One search: ``budget`` on the worst-sample drift of ``precision``, measured on held-out crops.

    ``calibration``: int8 calibration settings (their crops default to four of the seven sample
    identities); ``evaluation``: the held-out crops (the other three by default); ``timeout_s``:
    stop with the best result so far after this many seconds (None: no limit).
    """

    budget: float
    precision: str
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        budget_for(self.precision, self.budget)
        if self.timeout_s is not None and not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise InputError(f"--search-timeout must be a number of seconds above 0, got {self.timeout_s}")
