"""Where the tool keeps its files: one user cache folder, overridable, and the one engine cache root."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "ARCFACE_TRT_CACHE_DIR"


def cache_root() -> Path:
    """The cache folder.

    ``$ARCFACE_TRT_CACHE_DIR``, else ``$XDG_CACHE_HOME/arcface-trt``, else ``~/.cache/arcface-trt``.
    """
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "arcface-trt"


def models_dir() -> Path:
    """Folder holding generated models."""
    return cache_root() / "models"


def engine_cache_root(configured: str | Path | None = None, override: str | Path | None = None) -> Path:
    """The folder of every cached engine (TensorRT plans and CPU engines alike).

    ``override`` (a ``--cache-dir`` option), else ``configured`` (``tensorrt.cache_dir``), else
    ``<user cache>/engines``. Every caller that needs the engine cache asks this one function.
    """
    chosen = override or configured
    return Path(chosen).expanduser() if chosen else cache_root() / "engines"
