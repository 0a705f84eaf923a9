"""The one way heavy optional modules are imported: a module-level proxy that imports on first use.

In the style of Polygraphy's ``mod.lazy_import``: a module binds ``trt =
lazy_import("tensorrt")`` once at its top and its body reads like ordinary code; the
import happens when an attribute is first read, and a missing module is a
:class:`BackendUnavailableError` carrying the install hint, kept in one table here.
Every attribute read goes through ``importlib.import_module`` (a dictionary lookup
once imported), so a module swapped in ``sys.modules`` (the tests' fakes) is seen at once.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from arcface_trt.errors import BackendUnavailableError

#: Top-level module -> (what provides it, how to install it).
_PROVIDERS = {
    "onnxruntime": ("onnxruntime", "pip install onnxruntime (or onnxruntime-gpu on a CUDA machine, never both)"),
    "insightface": ("insightface", "pip install insightface"),
    "cv2": ("OpenCV", "pip install opencv-python"),
    "onnx": ("onnx", "pip install onnx"),
    "tensorrt": ("TensorRT", "pip install 'arcface-trt[gpu]' (TensorRT wheels need an NVIDIA GPU machine)"),
    "cuda": ("cuda-python", "pip install 'arcface-trt[gpu]' (cuda-python matching the TensorRT wheel's CUDA major)"),
    "pynvml": ("nvidia-ml-py", "pip install nvidia-ml-py"),
    "boto3": ("boto3", "pip install boto3"),
    "botocore": ("boto3", "pip install boto3"),
    "onnxconverter_common": ("onnxconverter-common", "pip install onnxconverter-common"),
    "modelopt": ("NVIDIA ModelOpt", "pip install nvidia-modelopt"),
    "matplotlib": ("matplotlib", "pip install 'arcface-trt[plot]' (or: pip install matplotlib)"),
    "ray": ("Ray Data", "pip install 'arcface-trt[ray]' (or: pip install 'ray[data]')"),
    "pyarrow": ("pyarrow", "pip install pyarrow"),
}


def install_hint(module: str) -> str:
    """How to install what provides ``module``."""
    top = module.split(".")[0]
    return _PROVIDERS.get(top, (top, f"pip install {top}"))[1]


def require(module: str, *fallbacks: str) -> ModuleType:
    """Import ``module`` (else the first importable of ``fallbacks``) or raise with the install hint."""
    error: ImportError | None = None
    for name in (module, *fallbacks):
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            error = error or exc
    top = module.split(".")[0]
    provider = _PROVIDERS.get(top, (top, ""))[0]
    raise BackendUnavailableError(
        f"Python module '{module}' is not importable ({provider} is not installed here: {error}); "
        f"install it with: {install_hint(module)}"
    ) from error


def available(module: str, *fallbacks: str) -> bool:
    """True when :func:`require` would succeed."""
    try:
        require(module, *fallbacks)
    except BackendUnavailableError:
        return False
    return True


class LazyModule(ModuleType):
    """A stand-in for a module that is imported when one of its attributes is first read."""

    def __init__(self, name: str, fallbacks: tuple[str, ...] = ()) -> None:
        super().__init__(name)
        self._lazy_fallbacks = fallbacks

    def __getattr__(self, attr: str) -> Any:
        # Only called for names the proxy itself lacks: everything the real module offers.
        if attr.startswith("_lazy_"):
            raise AttributeError(attr)
        return getattr(require(self.__name__, *self._lazy_fallbacks), attr)

    def __dir__(self) -> list[str]:
        return dir(require(self.__name__, *self._lazy_fallbacks))


def lazy_import(module: str, *fallbacks: str) -> Any:
    """A proxy for ``module`` (or, when it is missing, the first of ``fallbacks``), imported on first use."""
    return LazyModule(module, fallbacks)


def resolve(proxy: Any) -> ModuleType:
    """The real module behind a :func:`lazy_import` proxy (imported now), or ``proxy`` itself."""
    if isinstance(proxy, LazyModule):
        return require(proxy.__name__, *proxy._lazy_fallbacks)
    return proxy
