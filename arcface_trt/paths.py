"""Where the tool keeps its files: one user cache folder, overridable."""

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


def engines_dir() -> Path:
    """Default folder of the engine cache (plans and manifests)."""
    return cache_root() / "engines"
