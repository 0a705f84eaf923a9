"""Test helpers of the precision tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def embed_with_ort(model: Path, crops) -> np.ndarray:
    """L2-normalised embeddings of ``crops`` by a plain ONNX Runtime CPU session on ``model``."""
    import onnxruntime as ort

    from arcface_trt.model.inspect import inspect_model
    from arcface_trt.preprocess import l2_normalize, preprocess

    info = inspect_model(model)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    batch = preprocess(crops, info.input_size, info.input_mean, info.input_std)
    return l2_normalize(session.run(None, {info.input_name: batch})[0])
