"""Benchmarking: timing loops, latency statistics, memory, environment, report and chart.

The pieces are separate so ``diagnose`` and the ``benchmark`` command share them:
:mod:`.stats` (numbers from samples), :mod:`.timing` (the warm-up-excluded loop),
:mod:`.memory`, :mod:`.environment`, :mod:`.runner` (backends x batch sizes),
:mod:`.trt_timing` (TensorRT modes on an embedder's device timer), :mod:`.report` (JSON and table
rows) and :mod:`.plot` (PNG chart).
"""
