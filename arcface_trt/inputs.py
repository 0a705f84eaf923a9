"""Where face crops come from: seeded samples, a folder of images, or a ``.npy`` array."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from arcface_trt.errors import InputError
from arcface_trt.faces import sample_faces
from arcface_trt.lazy import lazy_import

cv2 = lazy_import("cv2")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted); InputError if none or not a folder."""
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"image folder not found: {folder}")
    if not folder.is_dir():
        raise InputError(f"not a folder: {folder}")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return paths


def decode_image(data: bytes | np.ndarray) -> np.ndarray | None:
    """Decode an encoded image (JPEG, PNG, ...) to a BGR uint8 array, or None when it is not one."""
    buffer = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes | bytearray | memoryview) else data
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    return image if image is not None and image.size else None


def read_image(path: Path) -> np.ndarray | None:
    """Decode a BGR uint8 image, or None when the file is not a readable image."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    return decode_image(data)


def read_images(paths: Sequence[Path]) -> list[np.ndarray]:
    """Each of ``paths`` as a BGR crop; a missing or unreadable image is an InputError naming it."""
    crops = []
    for path in paths:
        image = read_image(path)
        if image is None:
            raise InputError(f"{'not a readable image' if path.exists() else 'image not found'}: {path}")
        crops.append(image)
    return crops


def load_images(folder: str | Path) -> list[np.ndarray]:
    """Every image of ``folder`` (see :func:`list_images`) as BGR crops; an unreadable image is an InputError."""
    return read_images(list_images(folder))


def load_npy(path: str | Path) -> np.ndarray:
    """Crops from a ``.npy`` file of shape ``(N, H, W, 3)`` (uint8, or float with values 0..255)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"npy file not found: {path}")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"not a readable .npy array: {path} ({exc})") from None
    if array.ndim not in (3, 4) or array.shape[-1] != 3 or array.shape[0] < 1:
        # The shape as the file holds it, not as it would be read.
        raise InputError(f"{path}: crops must have shape (N, H, W, 3) or (H, W, 3), got {array.shape}")
    if array.ndim == 3:
        array = array[None]
    check_crops_layout(array.shape, array.dtype, path)
    return crops_to_uint8(array, path)


def check_crops_layout(shape: tuple[int, ...], dtype: np.dtype, where: object) -> None:
    """Refuse an array of crops that is not ``(N, H, W, 3)`` (N >= 1) of a numeric type."""
    if len(shape) != 4 or shape[-1] != 3 or shape[0] < 1:
        raise InputError(f"{where}: crops must have shape (N, H, W, 3), got {shape}")
    if not np.issubdtype(dtype, np.number):
        raise InputError(f"{where}: crops must be numeric, got dtype {dtype}")


def crops_to_uint8(array: np.ndarray, where: object) -> np.ndarray:
    """Crops as uint8: already uint8, or float/int values in 0..255 rounded (NaN or out of range: InputError)."""
    if array.dtype == np.uint8:
        return array
    if not np.isfinite(array).all():
        raise InputError(f"{where}: crops contain NaN or infinite values")
    if array.min() < 0 or array.max() > 255:
        raise InputError(f"{where}: crop values must lie in 0..255")
    return np.rint(array).astype(np.uint8)


def load_crops(
    n_samples: int | None = None,
    images: str | Path | None = None,
    npy: str | Path | None = None,
    seed: int = 0,
    limit: int | None = None,
) -> np.ndarray | list[np.ndarray]:
    """Crops from exactly one source: ``images`` folder, ``npy`` file, or ``n_samples`` seeded samples.

    ``limit`` is an ``--n-samples`` the user gave with ``images`` or ``npy``: the first ``limit``
    crops are used, and a source with fewer is an InputError that says how many it holds.
    """
    if images is not None and npy is not None:
        raise InputError("give either --images or --npy, not both")
    if images is not None or npy is not None:
        crops = load_images(images) if images is not None else load_npy(npy)
        if limit is not None and limit > len(crops):
            raise InputError(
                f"--n-samples {limit} asks for more crops than {images or npy} holds ({len(crops)}); "
                "leave --n-samples out to use all of them"
            )
        return crops if limit is None else crops[:limit]
    if n_samples is None or n_samples < 1:
        raise InputError(f"--n-samples must be at least 1, got {n_samples}")
    return sample_faces(n_samples, seed)
