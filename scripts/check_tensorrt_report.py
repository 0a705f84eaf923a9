#!/usr/bin/env python3
"""Fail unless a ``compare --backend-b tensorrt --json`` report shows TensorRT really ran and passed its own gate.

A parity gate must not pass by accident: a fallback to the CPU reference, another provider, or a
tolerance given for one run instead of the precision's own key would all "pass". For each report:

- backend B is ``tensorrt``, was asked for as ``tensorrt``, has no ``fallback_reason``, runs on a
  ``TensorRT <version>`` provider and names its engine file;
- the tolerance applied is the key of B's precision (``validation.max_drift_cosine``, ``_fp16``,
  ``_int8``), not ``--max-drift-cosine``;
- the check passed.

Usage: python scripts/check_tensorrt_report.py REPORT.json [REPORT.json ...]
Prints one ``ok:`` line per good report on stdout and one ``fail:`` line per problem on stderr;
exit 0 when every report is good, 1 when one is not, 2 when a report cannot be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from arcface_trt.config import DRIFT_KEYS


def problems(report: dict[str, Any]) -> list[str]:
    """What shows that this report is not a passing TensorRT comparison (empty when it is one)."""
    b = report.get("backend_b") or {}
    found = []
    if b.get("backend") != "tensorrt" or b.get("requested_backend") != "tensorrt":
        found.append(f"backend B ran {b.get('backend')} (asked for {b.get('requested_backend')}), not tensorrt")
    if b.get("fallback_reason"):
        found.append(f"backend B fell back: {b['fallback_reason']}")
    providers = b.get("providers") or []
    if not providers or not str(providers[0]).startswith("TensorRT "):
        found.append(f"backend B ran on {providers or 'no provider'}, not a TensorRT engine")
    if not b.get("engine_path"):
        found.append("backend B names no engine file")
    precision = b.get("precision")
    expected = f"validation.{DRIFT_KEYS[precision]}" if precision in DRIFT_KEYS else None
    if expected is None or report.get("tolerance_key") != expected:
        found.append(f"the check used {report.get('tolerance_key')}, not the {precision} key {expected}")
    if report.get("passed") is not True:
        found.append(
            f"parity failed: worst drift {report.get('max_drift')} > {report.get('max_drift_cosine')} "
            f"({report.get('tolerance_key')})"
        )
    return found


def main(paths: list[str]) -> int:
    """Check each report; the exit code (see the module docstring)."""
    if not paths:
        print("usage: python scripts/check_tensorrt_report.py REPORT.json [REPORT.json ...]", file=sys.stderr)
        return 2
    failed = False
    for path in paths:
        try:
            report = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"error: cannot read {path}: {exc}", file=sys.stderr)
            return 2
        if not isinstance(report, dict):
            print(f"error: {path} is not a compare report (a JSON object)", file=sys.stderr)
            return 2
        found = problems(report)
        for problem in found:
            print(f"fail: {path}: {problem}", file=sys.stderr)
        if found:
            failed = True
            continue
        b = report["backend_b"]
        print(
            f"ok: {path}: tensorrt {b['precision']} ({b['providers'][0]}), worst drift {report['max_drift']:.2e} "
            f"<= {report['max_drift_cosine']:g} ({report['tolerance_key']})"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
