"""The shared engine store on S3 (and S3-compatible servers): push, fetch, list.

Exports are loaded on first use, so ``import arcface_trt.store`` costs nothing and
boto3 is imported only when a store operation runs.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "fetch_into_cache": "arcface_trt.store.engines",
    "fetch": "arcface_trt.store.engines",
    "push_plan": "arcface_trt.store.engines",
    "list_engines": "arcface_trt.store.engines",
    "FetchResult": "arcface_trt.store.engines",
    "StoreEntry": "arcface_trt.store.engines",
    "StoreSettings": "arcface_trt.store.s3",
    "S3Store": "arcface_trt.store.s3",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'arcface_trt.store' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
