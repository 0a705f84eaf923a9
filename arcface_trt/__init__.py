"""arcface-trt: TensorRT engines for ArcFace face-recognition models, with parity checks.

The public entry point is :func:`get_embedding_backend`; it is imported lazily so
that ``import arcface_trt`` (and the CLI's ``--help``) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arcface_trt.version import __version__

__all__ = ["__version__", "get_embedding_backend"]

if TYPE_CHECKING:
    from arcface_trt.backends import get_embedding_backend


def __getattr__(name: str) -> Any:
    if name == "get_embedding_backend":
        from arcface_trt.backends import get_embedding_backend

        return get_embedding_backend
    raise AttributeError(f"module 'arcface_trt' has no attribute {name!r}")
