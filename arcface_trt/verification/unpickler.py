"""A pickle reader for pair-set ``.bin`` files that builds plain data only and never runs code.

A pickle names callables by module and name and calls them while it loads; ``pickle.load``
on a downloaded file would run whatever it names (``os.system``, ``builtins.eval``). The
InsightFace validation files (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``) hold only
``(bins, issame_list)``: lists and tuples of bytes, bools and ints, which a pickle builds
with opcodes alone, and in some files NumPy bool scalars or arrays, which need globals.

The only globals resolved, each to a guard here that checks its arguments and builds the
value itself (no NumPy-internal function is ever called), are:

- ``numpy.dtype``: the bool dtype only (``'b1'``), always a fresh copy;
- ``numpy.ndarray``: a token that only the ``_reconstruct`` guard accepts (it builds nothing itself);
- ``numpy.core.multiarray._reconstruct`` (NumPy 1, and Python 2 pickles) and
  ``numpy._core.multiarray._reconstruct`` (NumPy 2): the empty array that the pickle's state
  then fills; the state's dtype can only come from the ``numpy.dtype`` guard;
- ``numpy.core.multiarray.scalar`` (NumPy 1) and ``numpy._core.multiarray.scalar`` (NumPy 2):
  a NumPy bool scalar from one byte;
- ``numpy.core.numeric._frombuffer`` (NumPy 1) and ``numpy._core.numeric._frombuffer``
  (NumPy 2): a bool array from raw bytes (pickle protocol 5);
- ``_codecs.encode``: bytes from text with the ``latin1`` codec only (how Python 3 writes
  bytes at pickle protocols 0 to 2).

Any other global is refused before anything is built, with one line naming it. Python 2
pickles load with ``encoding="bytes"``, so their ``str`` values (the encoded images) arrive
as bytes, as InsightFace's own loader reads them.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from arcface_trt.errors import InputError, first_line

_BOOL = np.dtype(bool)


class UnsafePickleError(InputError):
    """The pickle names a global that a pair-set file never holds; nothing was run."""


class _NdarrayToken:
    """What ``numpy.ndarray`` resolves to: not callable, not a type; only ``_reconstruct`` accepts it."""


_NDARRAY = _NdarrayToken()


def _text(value: Any) -> str:
    """A pickled text argument: ``str`` (Python 3) or ``bytes`` (Python 2 ``str`` loaded with encoding="bytes")."""
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace")
    if isinstance(value, str):
        return value
    raise pickle.UnpicklingError(f"expected text, got {type(value).__name__}")


def _dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    if _text(spec) not in ("b1", "?"):
        raise pickle.UnpicklingError(f"only bool NumPy data is allowed, not dtype {_text(spec)!r}")
    # A copy, always: the pickle's state (byte order) is applied to it, never to NumPy's shared bool dtype.
    return np.dtype(bool, align=False, copy=True)


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    if subtype is not _NDARRAY:
        raise pickle.UnpicklingError("_reconstruct builds plain NumPy arrays only")
    if tuple(shape) != (0,):
        raise pickle.UnpicklingError(f"unexpected _reconstruct shape {shape!r}")
    # Filled by ndarray.__setstate__ with the pickle's shape, dtype (bool only) and bytes.
    return np.empty(0, dtype=np.uint8)


def _check_bool(dtype: Any) -> None:
    if not isinstance(dtype, np.dtype) or dtype != _BOOL:
        raise pickle.UnpicklingError(f"only bool NumPy data is allowed, not {dtype!r}")


def _scalar(dtype: Any, data: Any = b"\x00") -> np.bool_:
    _check_bool(dtype)
    if not isinstance(data, bytes) or len(data) != 1:
        raise pickle.UnpicklingError("a NumPy bool scalar is one byte")
    return np.bool_(data != b"\x00")


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any = "C", axis_order: Any = None) -> np.ndarray:
    _check_bool(dtype)
    if not isinstance(buffer, bytes | bytearray):
        raise pickle.UnpicklingError("_frombuffer needs raw bytes")
    if _text(order) not in ("C", "F"):
        raise pickle.UnpicklingError(f"unexpected array order {order!r}")
    return np.frombuffer(bytes(buffer), dtype=_BOOL).reshape(tuple(shape), order=_text(order))  # type: ignore[arg-type]


def _encode(text: Any, encoding: Any = "utf-8") -> bytes:
    if not isinstance(text, str) or _text(encoding) != "latin1":
        raise pickle.UnpicklingError("_codecs.encode is allowed for latin1 text only")
    return text.encode("latin1")


#: ``(module, name)`` in the pickle -> the guard that stands for it. Nothing else resolves.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "dtype"): _dtype,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`ALLOWED_GLOBALS`; ``find_class`` is the one door a pickle has to code."""

    def find_class(self, module: str, name: str) -> Any:
        guard = ALLOWED_GLOBALS.get((module, name))
        if guard is None:
            raise UnsafePickleError(f"{module}.{name}")
        return guard

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def restricted_loads(data: bytes, source: str) -> Any:
    """The object pickled in ``data``, built from plain data and :data:`ALLOWED_GLOBALS` only.

    Raises :class:`UnsafePickleError` when the pickle names any other global (nothing has run
    then), and :class:`InputError` when ``data`` is not a complete pickle; ``source`` names the
    file in both messages.
    """
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(
            f"{source}: refused: the pickle asks for {exc}, which a pair-set .bin never holds "
            "(nothing was run; only lists, tuples, bytes, bools, ints and NumPy bools are loaded)"
        ) from None
    except Exception as exc:  # any failure to parse untrusted bytes is bad input, whatever its type
        raise InputError(
            f"{source}: not a readable pair-set pickle (truncated or not a pickle: {first_line(exc)})"
        ) from None
