"""Embedding backends and the one entry point the pipeline uses: :func:`get_embedding_backend`.

A :class:`~arcface_trt.backends.spec.BackendSpec` says which embedder to make (every
config default resolved once); :func:`create_embedder` makes it, and falls back to the
InsightFace reference on the CPU, saying why, when the spec allows it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from arcface_trt.backends.base import BackendInfo, DeviceTimer, Embedder
from arcface_trt.backends.insightface_backend import InsightFaceEmbedder
from arcface_trt.backends.onnxruntime_backend import OnnxRuntimeEmbedder
from arcface_trt.backends.spec import BackendSpec
from arcface_trt.backends.tensorrt_backend import TensorrtEmbedder
from arcface_trt.config import TensorrtConfig
from arcface_trt.errors import BackendUnavailableError, ConfigError
from arcface_trt.model.inspect import ModelInfo, inspect_model

__all__ = ["BackendInfo", "BackendSpec", "DeviceTimer", "Embedder", "create_embedder", "get_embedding_backend"]

log = logging.getLogger("arcface_trt")


def _make(spec: BackendSpec, model: ModelInfo) -> Embedder:
    if spec.precision is not None and spec.backend != "onnxruntime":
        raise ConfigError(
            f"precision '{spec.precision}' selects a CPU engine of the onnxruntime backend; "
            f"the {spec.backend} backend takes none (TensorRT's comes from tensorrt.precision)"
        )
    if spec.drift_budget is not None and spec.backend == "insightface":
        raise ConfigError(
            "a drift budget selects an onnxruntime CPU engine or a TensorRT plan; the reference backend takes none"
        )
    if spec.backend == "insightface":
        return InsightFaceEmbedder(model, spec.device, spec.allow_cpu_fallback, spec.batch_size, threads=spec.threads)
    if spec.backend == "onnxruntime":
        return OnnxRuntimeEmbedder(
            model,
            spec.device,
            spec.allow_cpu_fallback,
            spec.batch_size,
            threads=spec.threads,
            cpu_engine=spec.precision,
            engine_cache_dir=spec.tensorrt.tensorrt.cache_dir,
            keep_fp32_nodes=spec.keep_fp32_nodes,
            inputs=spec.inputs,
            drift_budget=spec.drift_budget,
        )
    return TensorrtEmbedder(model, spec)


def create_embedder(spec: BackendSpec) -> Embedder:
    """A ready embedder for ``spec``; where it cannot run and may fall back, the reference on the CPU (saying why)."""
    model = inspect_model(spec.model_file(), spec.inputs)
    try:
        embedder = _make(spec, model)
        embedder.ensure_ready()
        model.report_input_spec()
        return embedder
    except BackendUnavailableError as exc:
        if not spec.allow_cpu_fallback:
            raise
        reason = str(exc)
    log.warning(
        "%s backend unavailable: %s; falling back to the InsightFace reference on the CPU", spec.backend, reason
    )
    fallback = InsightFaceEmbedder(
        model, "cpu", False, spec.batch_size, requested_backend=spec.backend, threads=spec.threads
    )
    fallback.ensure_ready()
    model.report_input_spec()
    fallback.fallback_reason = reason
    return fallback


def get_embedding_backend(
    backend_type: str | None = None,
    device: str | None = None,
    tensorrt_config: str | Path | TensorrtConfig | None = None,
    allow_cpu_fallback: bool | None = None,
    onnx_path: str | Path | None = None,
    **options: Any,
) -> Embedder:
    """Return a ready embedder whose ``encode(crops)`` gives ``(N, D)`` L2-normalised float32.

    Arguments left as None come from the embedding config (``config``: a path or a
    loaded :class:`EmbeddingConfig`; default ``config/pipeline/embedding.yaml`` when
    present, else built-in defaults). ``onnx_path`` overrides the configured model.

    When the requested backend cannot run here and ``allow_cpu_fallback`` is true, the
    InsightFace reference on the CPU is returned instead; a warning is logged and
    ``info().fallback_reason`` says why. Without fallback the cause is raised as
    :class:`~arcface_trt.errors.BackendUnavailableError`.

    Keyword ``options`` are those of :meth:`BackendSpec.resolve`: ``config`` (above), ``batch_size``
    (largest batch per backend call), ``precision`` (fp32 | fp16 | int8; onnxruntime backend only),
    which runs the cached CPU engine of that precision (:mod:`arcface_trt.precision.cpu_engine`),
    building it when absent (None runs the ONNX model as it is), and ``inputs``, an
    :class:`~arcface_trt.model.input_spec.InputSettings` (mean, std, colour order) that wins over the
    config's; the rest of the input spec is read from the model (``info().input_spec`` shows it).
    """
    return create_embedder(
        BackendSpec.resolve(backend_type, device, tensorrt_config, allow_cpu_fallback, onnx_path, **options)
    )
