"""InsightFace's validation ``.bin`` format: a pickle of ``(bins, issame_list)``.

``bins`` holds encoded aligned face images (JPEG or PNG bytes); pair ``i`` is ``bins[2i]`` and
``bins[2i + 1]``, and ``issame_list[i]`` says whether they show the same person. Files written
by Python 2 or 3 are read, always through :mod:`arcface_trt.verification.unpickler` (never
``pickle.load``); :func:`write_bin` writes the same format (protocol 4, readable by InsightFace's
``load_bin``).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from arcface_trt.errors import InputError
from arcface_trt.fileio import write_bytes_atomic
from arcface_trt.verification.unpickler import restricted_loads

#: Largest ``.bin`` read (the InsightFace sets are 60 to 100 MB): a bound on what is read into memory.
MAX_BIN_BYTES = 2 << 30


def _issame(value: object, source: str) -> np.ndarray:
    """``issame_list`` as a bool array: a list/tuple of bools (or 0/1 ints), or a 1-D NumPy bool array."""
    if isinstance(value, np.ndarray):
        if value.dtype != np.dtype(bool) or value.ndim != 1:
            raise InputError(f"{source}: issame_list must be one bool per pair, got an array of {value.dtype}")
        return value.astype(bool)
    if not isinstance(value, list | tuple):
        raise InputError(f"{source}: issame_list must be a list of bools, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, bool | int | np.bool_) or item not in (0, 1):
            raise InputError(f"{source}: issame_list[{i}] must be a bool, got {type(item).__name__} {item!r}")
    return np.array([bool(item) for item in value], dtype=bool)


def read_bin(path: str | Path) -> tuple[list[bytes], np.ndarray]:
    """The encoded images and the per-pair same-person flags of an InsightFace ``.bin``.

    Every failure (unsafe pickle, truncated file, wrong structure) is an InputError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"pair-set file not found: {path}")
    size = path.stat().st_size
    if size > MAX_BIN_BYTES:
        raise InputError(f"{path}: {size / 2**30:.1f} GiB is larger than a pair-set .bin can be (at most 2 GiB)")
    data = restricted_loads(path.read_bytes(), str(path))
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise InputError(f"{path}: a pair-set .bin holds (bins, issame_list), got {type(data).__name__}")
    bins, raw_issame = data
    issame = _issame(raw_issame, str(path))
    if not isinstance(bins, list | tuple):
        raise InputError(f"{path}: bins must be a list of encoded images, got {type(bins).__name__}")
    for i, item in enumerate(bins):
        if not isinstance(item, bytes | bytearray):
            raise InputError(f"{path}: bins[{i}] must be encoded image bytes, got {type(item).__name__}")
    if len(issame) == 0:
        raise InputError(f"{path}: holds no pairs")
    if len(bins) != 2 * len(issame):
        raise InputError(f"{path}: holds {len(bins)} images for {len(issame)} pairs (expected {2 * len(issame)})")
    return [bytes(item) for item in bins], issame


def write_bin(path: str | Path, encoded: Sequence[bytes], issame: Sequence[bool]) -> Path:
    """Write ``(encoded, issame)`` as a ``.bin`` (pair ``i`` = ``encoded[2i]``, ``encoded[2i + 1]``), atomically."""
    if len(encoded) != 2 * len(issame):
        raise ValueError("a .bin holds two images per pair")
    payload = pickle.dumps((list(encoded), [bool(s) for s in issame]), protocol=4)
    path = Path(path)
    write_bytes_atomic(path, payload)
    return path
