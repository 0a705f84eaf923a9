"""Embedding backends and the one entry point the pipeline uses: :func:`get_embedding_backend`."""

from __future__ import annotations

import logging
from pathlib import Path

from arcface_trt.backends.base import BackendInfo, Embedder
from arcface_trt.config import EmbeddingConfig, TensorrtConfig, load_config, load_tensorrt_config
from arcface_trt.errors import BackendUnavailableError, ConfigError
from arcface_trt.model.default import resolve_model_path
from arcface_trt.model.inspect import ModelInfo, inspect_model
from arcface_trt.precision import PRECISIONS

__all__ = ["BackendInfo", "Embedder", "canonical_backend", "get_embedding_backend"]

log = logging.getLogger("arcface_trt")

#: ``pytorch`` is what the pipeline this replaces called the InsightFace reference.
ALIASES = {"pytorch": "insightface"}
KNOWN = ("insightface", "onnxruntime", "tensorrt")


def canonical_backend(name: str) -> str:
    """Map a backend name or alias to its canonical name; unknown names are a ConfigError."""
    canonical = ALIASES.get(name, name)
    if canonical not in KNOWN:
        raise ConfigError(f"unknown backend '{name}' (choose pytorch, insightface, onnxruntime or tensorrt)")
    return canonical


def _tensorrt_config(value: str | Path | TensorrtConfig | None, config: EmbeddingConfig) -> TensorrtConfig:
    if value is None:
        return config.tensorrt
    if isinstance(value, TensorrtConfig):
        return value
    return load_tensorrt_config(value)


def _create(
    name: str,
    model: ModelInfo,
    device: str,
    allow_cpu_fallback: bool,
    batch_size: int,
    tensorrt: TensorrtConfig,
    precision: str | None = None,
) -> Embedder:
    if precision is not None and name != "onnxruntime":
        raise ConfigError(
            f"precision '{precision}' selects a CPU engine of the onnxruntime backend; "
            f"the {name} backend takes none (TensorRT's comes from tensorrt.precision)"
        )
    if name == "insightface":
        from arcface_trt.backends.insightface_backend import InsightFaceEmbedder

        return InsightFaceEmbedder(model, device, allow_cpu_fallback, batch_size)
    if name == "onnxruntime":
        from arcface_trt.backends.onnxruntime_backend import OnnxRuntimeEmbedder

        return OnnxRuntimeEmbedder(
            model,
            device,
            allow_cpu_fallback,
            batch_size,
            cpu_engine=precision,
            engine_cache_dir=tensorrt.tensorrt.cache_dir,
            fp16_keep_fp32_nodes=tensorrt.tensorrt.fp16_keep_fp32_nodes,
        )
    from arcface_trt.backends.tensorrt_backend import create_tensorrt_embedder

    return create_tensorrt_embedder(model, device, batch_size, tensorrt)


def get_embedding_backend(
    backend_type: str | None = None,
    device: str | None = None,
    tensorrt_config: str | Path | TensorrtConfig | None = None,
    allow_cpu_fallback: bool | None = None,
    onnx_path: str | Path | None = None,
    *,
    config: str | Path | EmbeddingConfig | None = None,
    batch_size: int | None = None,
    precision: str | None = None,
) -> Embedder:
    """Return a ready embedder whose ``encode(crops)`` gives ``(N, D)`` L2-normalised float32.

    Arguments left as None come from the embedding config (``config``: a path or a
    loaded :class:`EmbeddingConfig`; default ``config/pipeline/embedding.yaml`` when
    present, else built-in defaults). ``onnx_path`` overrides the configured model.

    When the requested backend cannot run here and ``allow_cpu_fallback`` is true, the
    InsightFace reference on the CPU is returned instead; a warning is logged and
    ``info().fallback_reason`` says why. Without fallback the cause is raised as
    :class:`~arcface_trt.errors.BackendUnavailableError`.

    ``precision`` (fp32 | fp16 | int8; onnxruntime backend only) runs the cached CPU
    engine of that precision (:mod:`arcface_trt.precision.cpu_engine`), building it when
    absent; None runs the ONNX model as it is.
    """
    cfg = config if isinstance(config, EmbeddingConfig) else load_config(config)
    emb = cfg.embedding
    requested = canonical_backend(backend_type or emb.backend)
    device = device or emb.device
    allow = emb.allow_cpu_fallback if allow_cpu_fallback is None else allow_cpu_fallback
    batch = batch_size or emb.batch_size
    model = inspect_model(resolve_model_path(onnx_path, emb))
    trt_cfg = _tensorrt_config(tensorrt_config, cfg)
    try:
        if precision is not None and precision not in PRECISIONS:
            raise ConfigError(f"unknown precision '{precision}' (choose {', '.join(PRECISIONS)})")
        embedder = _create(requested, model, device, allow, batch, trt_cfg, precision)
        embedder.ensure_ready()
        return embedder
    except BackendUnavailableError as exc:
        if not allow:
            raise
        reason = str(exc)
    from arcface_trt.backends.insightface_backend import InsightFaceEmbedder

    log.warning("%s backend unavailable: %s; falling back to the InsightFace reference on the CPU", requested, reason)
    fallback = InsightFaceEmbedder(model, "cpu", False, batch, requested_backend=requested)
    fallback.ensure_ready()
    fallback.fallback_reason = reason
    return fallback
