"""Fixtures of the CLI tests: small config files pointing at the r18 model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml


@pytest.fixture
def write_config(tmp_path: Path, r18_model: Path) -> Callable[..., Path]:
    """Write an embedding.yaml (+ its arcface_tensorrt.yaml) for r18 with batch 2; returns its path.

    Keyword arguments override ``embedding:`` keys (``model_path=`` picks another model);
    ``tensorrt=`` overrides ``tensorrt:`` keys.
    """

    def write(tensorrt: dict[str, Any] | None = None, **embedding: Any) -> Path:
        trt_path = tmp_path / "arcface_tensorrt.yaml"
        trt = {
            "arcface_tensorrt": {"enabled": True},
            "tensorrt": {"cache_dir": str(tmp_path / "engines"), **(tensorrt or {})},
        }
        trt_path.write_text(yaml.safe_dump(trt))
        emb = {
            "backend": "onnxruntime",
            "device": "cpu",
            "model_path": str(r18_model),
            "batch_size": 2,
            "tensorrt_config": str(trt_path),
            **embedding,
        }
        path = tmp_path / "embedding.yaml"
        path.write_text(yaml.safe_dump({"embedding": emb, "validation": {"n_samples": 4}}))
        return path

    return write
