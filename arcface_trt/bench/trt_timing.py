"""TensorRT timing modes, in trtexec's terms, on an embedder's :class:`~arcface_trt.backends.base.DeviceTimer`.

- ``inference``: H2D copy + GPU compute + D2H copy of a preprocessed batch; the host
  time of the whole call is the latency, and the three parts are timed separately by
  CUDA events (``timed_infer``). trtexec calls their sum "Latency".
- ``gpu_compute``: the engine alone, no data transfers (``compute_only``, CUDA events),
  trtexec's "GPU Compute Time" with ``--noDataTransfers``.
- ``gpu_compute_cuda_graph`` (with ``--cuda-graph``): the same, replayed from a captured
  CUDA graph (trtexec ``--useCudaGraph``), which removes most launch overhead.

The compute-only modes run on whatever the device input holds; ``inference`` runs
first (warm-up included), so that is the same real preprocessed batch.
"""

from __future__ import annotations

import numpy as np

from arcface_trt.backends.base import DeviceTimer
from arcface_trt.bench.timing import Timed


def trt_mode_names(runner: DeviceTimer, batch_size: int, cuda_graph: bool) -> list[str]:
    """The TensorRT modes timed at ``batch_size`` (compute-only needs the batch inside the engine profile)."""
    names = ["inference"]
    if runner.min_batch <= batch_size <= runner.max_batch:
        names.append("gpu_compute")
        if cuda_graph:
            names.append("gpu_compute_cuda_graph")
    return names


def trt_functions(runner: DeviceTimer, batch: np.ndarray, cuda_graph: bool) -> dict[str, tuple[Timed, bool]]:
    """name -> (timed function, timed on the host) for :func:`arcface_trt.bench.runner.timed_functions`."""
    n = len(batch)

    def inference() -> dict[str, float]:
        _, parts = runner.timed_infer(batch)
        return parts

    def compute() -> dict[str, float]:
        return {"compute_ms": runner.compute_only(n)}

    def compute_graph() -> dict[str, float]:
        return {"compute_ms": runner.compute_only(n, cuda_graph=True)}

    table: dict[str, tuple[Timed, bool]] = {
        "inference": (inference, True),
        "gpu_compute": (compute, False),
        "gpu_compute_cuda_graph": (compute_graph, False),
    }
    return {name: table[name] for name in trt_mode_names(runner, n, cuda_graph)}
