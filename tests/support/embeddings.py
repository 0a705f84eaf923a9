"""Embeddings to compare with: face crops written as image files, reference embedders, output checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_crops(folder: Path, crops: np.ndarray, start: int = 0) -> list[Path]:
    """Write crops as PNGs spread over two sub-folders (the folder input is recursive); their paths."""
    import cv2

    paths = []
    for i, crop in enumerate(crops, start=start):
        path = folder / f"sub{i % 2}" / f"face_{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), crop)
        paths.append(path)
    return paths


def reference(onnx: Path, batch_size: int = 4):
    """The ONNX Runtime embedder on the CPU that ``encode`` results are compared with."""
    from arcface_trt.backends import get_embedding_backend

    return get_embedding_backend("onnxruntime", "cpu", onnx_path=onnx, batch_size=batch_size)


def embed_with_ort(model: Path, crops) -> np.ndarray:
    """L2-normalised embeddings of ``crops`` by a plain ONNX Runtime CPU session on ``model``."""
    import onnxruntime as ort

    from arcface_trt.model.inspect import inspect_model
    from arcface_trt.preprocess import l2_normalize, preprocess

    info = inspect_model(model)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    batch = preprocess(crops, info.input_spec)
    return l2_normalize(session.run(None, {info.input_name: batch})[0])


def assert_matches_encode(keys: list[str], embeddings: np.ndarray, embedder, min_cosine: float = 0.99999) -> None:
    """Each row equals ``encode`` of the image its key names (cosine >= ``min_cosine``)."""
    from arcface_trt.inputs import read_image

    expected = embedder.encode([read_image(Path(k)) for k in keys])
    cosine = np.sum(expected.astype(np.float64) * embeddings.astype(np.float64), axis=1)
    assert cosine.min() >= min_cosine, cosine.min()


def summary_of(stdout: str) -> dict:
    """The --json summary."""
    return json.loads(stdout)
