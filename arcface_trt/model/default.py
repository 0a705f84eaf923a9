"""The built-in model: generated once into the user cache and reused."""

from __future__ import annotations

import logging
from pathlib import Path

from arcface_trt.config import EmbeddingSection
from arcface_trt.filelock import file_lock
from arcface_trt.model.iresnet import write_model
from arcface_trt.paths import models_dir

log = logging.getLogger(__name__)


def default_model_path(arch: str = "r50", seed: int = 0) -> Path:
    """Where the built-in model of ``arch`` and ``seed`` lives in the cache."""
    return models_dir() / f"arcface_{arch}_seed{seed}.onnx"


def ensure_default_model(arch: str = "r50", seed: int = 0) -> Path:
    """Return the built-in model's path, generating it first if it is not cached yet."""
    path = default_model_path(arch, seed)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_suffix(".lock")):
        if not path.exists():
            log.info("generating the built-in %s model (random weights, seed %d) into %s", arch, seed, path)
            write_model(path, arch, seed)
    return path


def configured_model_name(embedding: EmbeddingSection) -> str:
    """The engine-key name of the configured model: its file stem, else the built-in model's."""
    if embedding.model_path:
        return Path(embedding.model_path).stem
    return default_model_path(embedding.model_arch, embedding.model_seed).stem


def resolve_model_path(onnx_path: str | Path | None, embedding: EmbeddingSection) -> Path:
    """The model to use: ``onnx_path`` when given, else ``embedding.model_path``, else the built-in model."""
    chosen = onnx_path or embedding.model_path
    return Path(chosen) if chosen is not None else ensure_default_model(embedding.model_arch, embedding.model_seed)
