"""What a drift-budget search is asked for: the budget, the precision, the crop sets and a time limit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from arcface_trt.budget.crops import EvaluationSettings
from arcface_trt.errors import InputError
from arcface_trt.precision.int8 import CalibrationSettings
from arcface_trt.precision.plan import check_drift_budget

#: Precisions a budget applies to (fp32 has no drift to budget).
BUDGET_PRECISIONS = ("fp16", "int8")


def budgets_for(precisions: Sequence[str | None], drift_budget: float | None) -> dict[str | None, float | None]:
    """The budget each precision's engine is selected by: ``drift_budget`` for fp16 and int8, None for fp32.

    Commands that time or compare one precision or several ask this once; a budget that applies to none of
    ``precisions`` is an InputError.
    """
    if drift_budget is None:
        return dict.fromkeys(precisions)
    budgets = {p: check_drift_budget(drift_budget) if p in BUDGET_PRECISIONS else None for p in precisions}
    if not any(budgets.values()):
        named = ", ".join(str(p) for p in precisions) if any(precisions) else "none"
        raise InputError(f"--drift-budget applies to --precision fp16 or int8, got {named}")
    return budgets


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
        budgets_for([self.precision], self.budget)
        if self.timeout_s is not None and not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise InputError(f"--search-timeout must be a number of seconds above 0, got {self.timeout_s}")
