"""``diagnose``: what is really running and why, in one record.

:func:`run_diagnose` loads the configured backend exactly as the pipeline does
(a :class:`~arcface_trt.backends.spec.BackendSpec` from the config), times a short
benchmark, checks parity against the InsightFace reference on the CPU, and runs the
checks of :mod:`arcface_trt.diagnose.checks`.
"""

from arcface_trt.diagnose.checks import Problem
from arcface_trt.diagnose.record import DiagnoseRequest, run_diagnose

__all__ = ["DiagnoseRequest", "Problem", "run_diagnose"]
