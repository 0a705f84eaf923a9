"""PNG charts: matplotlib loaded on first use with the Agg backend (no display), figures written atomically.

matplotlib is optional (``pip install 'arcface-trt[plot]'``); only this module and the chart
modules that draw through :func:`png_figure` need it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from arcface_trt.errors import InputError
from arcface_trt.fileio import write_bytes_atomic
from arcface_trt.lazy import lazy_import

matplotlib = lazy_import("matplotlib")
pyplot = lazy_import("matplotlib.pyplot")


def check_png_path(path: str | Path) -> Path:
    """InputError unless ``path`` can name a PNG file (checked before a long run, not after)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--plot is a folder, give a file path: {path}")
    if path.suffix.lower() != ".png":
        raise InputError(f"--plot writes a PNG; give a file name ending in .png, got {path}")
    return path


def require_matplotlib() -> None:
    """Select matplotlib's Agg backend (no display needed), or BackendUnavailableError naming the ``plot`` extra."""
    matplotlib.use("Agg", force=True)


@contextlib.contextmanager
def png_figure(path: str | Path, columns: int = 1, size: tuple[float, float] = (6.4, 4.8)) -> Iterator[tuple[Any, Any]]:
    """Yield ``(figure, axes)`` of a ``1 x columns`` figure; written to the PNG ``path`` when the block ends well."""
    path = check_png_path(path)
    require_matplotlib()
    figure, axes = pyplot.subplots(1, columns, figsize=size)
    try:
        yield figure, axes
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
    finally:
        pyplot.close(figure)
    try:
        write_bytes_atomic(path, buffer.getvalue())
    except OSError as exc:
        raise InputError(f"cannot write the chart to {path}: {exc.strerror or exc}") from None
