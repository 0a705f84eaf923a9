"""Rows of a ``.npy`` file of crops, read on demand from a local file or an object store.

Only the header is read to open one (shape, dtype, where the data starts); rows are read
by offset, so neither the single-process run nor a Ray driver holds the whole array, and a
Ray task reads its own rows straight from the file's location. Values are checked and
converted as :func:`~arcface_trt.inputs.load_npy` does, row by row.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from arcface_trt.errors import InputError
from arcface_trt.inputs import check_crops_layout, crops_to_uint8
from arcface_trt.lazy import lazy_import
from arcface_trt.objectstore import ObjectStore, fs_errors, is_uri

pafs = lazy_import("pyarrow.fs")

#: Bytes read to parse a header (numpy writes headers of a few hundred bytes).
_HEADER_BYTES = 1 << 16
#: Rows checked at a time when a .npy of numbers other than uint8 is checked up front.
_CHECK_ROWS = 256


@dataclass(frozen=True)
class NpyLayout:
    """Where the rows of a ``.npy`` of crops are (picklable: Ray tasks open the file themselves)."""

    location: str
    offset: int
    shape: tuple[int, ...]
    dtype: str

    @property
    def rows(self) -> int:
        """Number of crops."""
        return self.shape[0]

    @property
    def row_bytes(self) -> int:
        """Bytes of one crop."""
        return int(np.prod(self.shape[1:])) * np.dtype(self.dtype).itemsize


def _open(location: str, store: ObjectStore) -> Any:
    """A random-access pyarrow file on ``location`` (a local path or a URI)."""
    if is_uri(location):
        remote = store.resolve(location)
        with store.errors("read", location):
            return remote.fs.open_input_file(remote.path)
    with fs_errors("read", location):
        return pafs.LocalFileSystem().open_input_file(location)


def read_npy_header(handle: Any, where: str) -> tuple[int, tuple[int, ...], np.dtype, bool]:
    """(data offset, shape, dtype, Fortran order) from the header of an open ``.npy``; InputError when it is none."""
    try:
        stream = io.BytesIO(handle.read_at(min(_HEADER_BYTES, handle.size()), 0))
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(stream)
    except (ValueError, EOFError, OSError) as exc:
        raise InputError(f"not a readable .npy array: {where} ({' '.join(str(exc).split())})") from None
    return stream.tell(), tuple(int(d) for d in shape), dtype, bool(fortran)


def read_layout(location: str, store: ObjectStore) -> NpyLayout:
    """Parse the header of the ``.npy`` at ``location``; a file that is not an array of crops is an InputError."""
    with _open(location, store) as handle:
        offset, shape, dtype, fortran = read_npy_header(handle, location)
    if fortran:
        raise InputError(f"{location}: a Fortran-ordered .npy is not supported (save it with np.save)")
    if dtype.hasobject:
        raise InputError(f"{location}: crops must be numeric, got dtype {dtype}")
    if len(shape) == 3:
        shape = (1, *shape)
    check_crops_layout(shape, dtype, location)
    return NpyLayout(location, offset, shape, dtype.str)


class NpyRows:
    """Thread-safe row reads of one ``.npy`` (pyarrow's ``read_at`` may be called from several threads)."""

    def __init__(self, layout: NpyLayout, store: ObjectStore) -> None:
        self.layout = layout
        self._file = _open(layout.location, store)

    def read_raw(self, start: int, stop: int) -> np.ndarray:
        """Crops ``start:stop`` as stored (any numeric dtype), ``(n, H, W, 3)``."""
        layout = self.layout
        if not 0 <= start <= stop <= layout.rows:
            raise InputError(f"{layout.location}: rows {start}:{stop} outside 0:{layout.rows}")
        size = (stop - start) * layout.row_bytes
        with fs_errors("read", layout.location):
            data = self._file.read_at(size, layout.offset + start * layout.row_bytes)
        if len(data) != size:
            raise InputError(f"{layout.location} ends early: the file is shorter than its header says")
        return np.frombuffer(data, dtype=np.dtype(layout.dtype)).reshape((stop - start, *layout.shape[1:]))

    def read(self, start: int, stop: int) -> np.ndarray:
        """Crops ``start:stop`` as uint8; values that are no crop (NaN, > 255) are an InputError."""
        return crops_to_uint8(self.read_raw(start, stop), f"{self.layout.location} rows {start}:{stop}")

    def check_values(self) -> None:
        """Refuse, before any work, a file whose numbers are not all crops (NaN, infinite, outside 0..255).

        uint8 needs no check; other types are read through once, a few hundred rows at a time.
        """
        if np.dtype(self.layout.dtype) == np.uint8:
            return
        for start in range(0, self.layout.rows, _CHECK_ROWS):
            crops_to_uint8(self.read_raw(start, min(start + _CHECK_ROWS, self.layout.rows)), self.layout.location)
