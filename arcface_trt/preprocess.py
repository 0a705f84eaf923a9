"""The one preprocessing function every backend uses (InsightFace ``ArcFaceONNX.get_feat``).

BGR uint8 HxWx3 crops -> resized to the model input -> BGR->RGB -> ``(x - mean) / std``
-> NCHW float32. It calls ``cv2.dnn.blobFromImages`` exactly as InsightFace does, so
parity measures the engine and never a preprocessing difference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from arcface_trt.errors import InputError
from arcface_trt.lazy import lazy_import

cv2 = lazy_import("cv2")

Crops = Sequence[np.ndarray] | np.ndarray

#: The colour order the model receives: crops arrive BGR (as OpenCV reads them) and are swapped.
CHANNEL_ORDER = "RGB"


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


def preprocess(crops: Crops, input_size: tuple[int, int], mean: float, std: float) -> np.ndarray:
    """Turn BGR uint8 crops into the model's NCHW float32 batch.

    ``input_size`` is ``(width, height)``. Identical to
    ``cv2.dnn.blobFromImages(imgs, 1/std, input_size, (mean,)*3, swapRB=True)``.
    """
    items = as_crop_list(crops)
    blob = cv2.dnn.blobFromImages(
        items, 1.0 / std, tuple(input_size), (mean, mean, mean), swapRB=CHANNEL_ORDER == "RGB"
    )
    return np.ascontiguousarray(blob, dtype=np.float32)


def l2_normalize(embeddings: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation to float32 (rows of zeros stay zero)."""
    x = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, np.finfo(np.float32).tiny)).astype(np.float32, copy=False)
