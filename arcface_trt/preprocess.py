"""The one preprocessing function every backend uses (InsightFace ``ArcFaceONNX.get_feat``), driven by an input spec.

BGR uint8 HxWx3 crops -> resized to the model's square side -> BGR->RGB (unless the model
takes BGR) -> ``(x - mean) / std`` per channel -> NCHW float32. With a scalar std it calls
``cv2.dnn.blobFromImages`` exactly as InsightFace does, so parity measures the engine and never
a preprocessing difference; a per-channel std multiplies by ``1 / std`` per channel after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from arcface_trt.errors import InputError
from arcface_trt.lazy import lazy_import
from arcface_trt.model.input_spec import InputSpec

cv2 = lazy_import("cv2")

Crops = Sequence[np.ndarray] | np.ndarray


def as_crop_list(crops: Crops) -> list[np.ndarray]:
    """Validate crops (a list of HxWx3 uint8 arrays or one (N,H,W,3) uint8 array) and return a list."""
    if isinstance(crops, np.ndarray):
        if crops.ndim == 3:
            crops = crops[None]
        if crops.ndim != 4 or crops.shape[-1] != 3:
            raise InputError(f"face crops must have shape (N, H, W, 3), got {crops.shape}")
        items = list(crops)
    else:
        items = list(crops)
    if not items:
        raise InputError("no face crops given")
    for i, crop in enumerate(items):
        if not isinstance(crop, np.ndarray) or crop.ndim != 3 or crop.shape[-1] != 3:
            shape = getattr(crop, "shape", type(crop).__name__)
            raise InputError(f"face crop {i} must be an HxWx3 BGR array, got {shape}")
        if crop.dtype != np.uint8:
            raise InputError(f"face crop {i} must be uint8 BGR, got dtype {crop.dtype}")
        if min(crop.shape[:2]) < 1:
            raise InputError(f"face crop {i} is empty: shape {crop.shape}")
    return items


def preprocess(crops: Crops, spec: InputSpec) -> np.ndarray:
    """Turn BGR uint8 crops into the NCHW float32 batch of a model with input spec ``spec``.

    For an RGB model with a scalar std, identical to InsightFace's
    ``cv2.dnn.blobFromImages(imgs, 1/std, (side, side), mean, swapRB=True)``.
    """
    items = as_crop_list(crops)
    std = spec.fed_std
    uniform = len(set(std)) == 1
    # blobFromImages takes the mean in the order of the channels it outputs, and one scale factor.
    blob = cv2.dnn.blobFromImages(
        items, 1.0 / std[0] if uniform else 1.0, (spec.side, spec.side), spec.fed_mean, swapRB=spec.color == "RGB"
    )
    if not uniform:
        blob = blob * (1.0 / np.asarray(std, dtype=np.float32)).reshape(1, 3, 1, 1)
    return np.ascontiguousarray(blob, dtype=np.float32)


def l2_normalize(embeddings: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation to float32 (rows of zeros stay zero)."""
    x = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, np.finfo(np.float32).tiny)).astype(np.float32, copy=False)
