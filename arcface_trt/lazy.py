"""Import heavy optional modules where they are used, with an install hint on failure."""

from __future__ import annotations

import importlib
from types import ModuleType

from arcface_trt.errors import BackendUnavailableError

_HINTS = {
    "onnxruntime": "pip install onnxruntime (or onnxruntime-gpu on a CUDA machine, never both)",
    "insightface": "pip install insightface",
    "cv2": "pip install opencv-python",
    "tensorrt": "pip install 'arcface-trt[gpu]' (TensorRT wheels need an NVIDIA GPU machine)",
    "boto3": "pip install boto3",
    "onnxconverter_common": "pip install onnxconverter-common",
    "matplotlib": "pip install matplotlib",
}


def require(module: str) -> ModuleType:
    """Import ``module`` or raise :class:`BackendUnavailableError` naming how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        hint = _HINTS.get(top, f"pip install {top}")
        raise BackendUnavailableError(
            f"Python module '{module}' is not importable ({exc}); install it with: {hint}"
        ) from exc
