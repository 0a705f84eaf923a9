"""The restricted unpickler: plain data and NumPy bools load (Python 2 and 3, NumPy 1 and 2 names); code never runs."""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import struct
from pathlib import Path

import numpy as np
import pytest

from arcface_trt.errors import InputError
from arcface_trt.verification import unpickler
from arcface_trt.verification.unpickler import UnsafePickleError, restricted_loads

JPEG_LIKE = [b"\xff\xd8\xff\xe0" + bytes(range(256)) * 2, b"\xff\xd8\xff\xe0\x00\x80\xff"]


def _short_or_long_string(data: bytes) -> bytes:
    """Python 2's ``str`` opcodes: SHORT_BINSTRING below 256 bytes, else BINSTRING."""
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data
    return b"T" + struct.pack("<i", len(data)) + data


def py2_pickle(bins: list[bytes], issame: list[bool]) -> bytes:
    """``(bins, issame)`` as Python 2's cPickle writes it at protocol 2 (``str`` images, NEWTRUE/NEWFALSE)."""
    out = b"\x80\x02]q\x01(" + b"".join(_short_or_long_string(b) for b in bins) + b"e"
    out += b"]q\x02(" + b"".join(b"\x88" if s else b"\x89" for s in issame) + b"e"
    return out + b"\x86q\x03."


def py2_numpy_bool_array(values: list[bool]) -> bytes:
    """A NumPy bool array as Python 2's NumPy 1 pickled it at protocol 2 (``numpy.core.multiarray``, ``str`` state)."""
    raw = bytes(int(v) for v in values)
    return (
        b"cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85U\x01b\x87R"
        b"(K\x01" + b"K" + bytes([len(values)]) + b"\x85"
        b"cnumpy\ndtype\nU\x02b1K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        b"\x89" + _short_or_long_string(raw) + b"tb"
    )


def test_a_python2_pickle_loads_with_its_str_images_as_bytes() -> None:
    data = py2_pickle(JPEG_LIKE, [True, False])
    pickletools.dis(data, out=io.StringIO())  # a well-formed pickle
    assert pickle.loads(data, encoding="bytes") == (JPEG_LIKE, [True, False])  # what InsightFace's loader sees
    bins, issame = restricted_loads(data, "py2.bin")
    assert bins == JPEG_LIKE and all(isinstance(b, bytes) for b in bins)
    assert issame == [True, False]


def test_a_python2_numpy_bool_array_loads() -> None:
    data = b"\x80\x02(]" + _short_or_long_string(JPEG_LIKE[1]) + b"a" + py2_numpy_bool_array([True, False, True])
    data += b"t."
    bins, issame = restricted_loads(data, "py2.bin")
    assert bins == [JPEG_LIKE[1]]
    assert isinstance(issame, np.ndarray) and issame.dtype == bool and issame.tolist() == [True, False, True]


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_python3_pickles_of_bytes_numpy_arrays_and_scalars_load(protocol: int) -> None:
    array = np.array([True, False, False, True])
    scalars = [np.bool_(True), np.bool_(False)]
    data = pickle.dumps((JPEG_LIKE, array, scalars, (1, 0)), protocol=protocol)
    bins, loaded, loaded_scalars, ints = restricted_loads(data, "py3.bin")
    assert bins == JPEG_LIKE
    assert loaded.dtype == bool and loaded.tolist() == array.tolist()
    assert [bool(s) for s in loaded_scalars] == [True, False] and all(isinstance(s, np.bool_) for s in loaded_scalars)
    assert ints == (1, 0)


def test_the_allowed_globals_are_exactly_the_documented_ones() -> None:
    expected = {
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        *((f"numpy.{core}.multiarray", name) for core in ("core", "_core") for name in ("_reconstruct", "scalar")),
        *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")),
        ("_codecs", "encode"),
    }
    assert set(unpickler.ALLOWED_GLOBALS) == expected
    for module, name in expected:
        assert f"{module}.{name}" in unpickler.__doc__, (module, name)


class _Exploit:
    """Pickles as a call of ``func(*args)``: what a hostile .bin holds."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _hostile(marker: Path) -> list[tuple[str, bytes]]:
    command = f"touch {marker}"
    opener = f"open({str(marker)!r}, 'w')"
    import builtins
    import subprocess

    return [
        ("posix.system, protocol 0", f"cposix\nsystem\n(S'{command}'\ntR.".encode()),
        ("os.system, protocol 0", f"cos\nsystem\n(S'{command}'\ntR.".encode()),
        ("os.system, protocol 4", pickle.dumps(_Exploit(os.system, command), protocol=4)),
        ("builtins.eval, protocol 2", pickle.dumps(_Exploit(builtins.eval, opener), protocol=2)),
        ("builtins.exec, protocol 5", pickle.dumps(_Exploit(builtins.exec, opener), protocol=5)),
        ("subprocess.Popen", pickle.dumps(_Exploit(subprocess.Popen, ["touch", str(marker)]), protocol=4)),
        # Hidden inside a valid-looking pair set, after plain data that loads first.
        ("inside (bins, issame)", pickle.dumps(([JPEG_LIKE[0], _Exploit(os.system, command)], [True]), protocol=4)),
    ]


def test_a_pickle_that_calls_a_function_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    for label, data in _hostile(marker):
        with pytest.raises(UnsafePickleError) as caught:
            restricted_loads(data, "evil.bin")
        message = str(caught.value)
        assert message.startswith("evil.bin: refused: the pickle asks for ") and "\n" not in message, label
        assert "nothing was run" in message, label
        assert not marker.exists(), label
    # The same bytes given to pickle itself would have run the command: the test's pickles are real exploits.
    pickle.loads(_hostile(marker)[2][1])
    assert marker.exists()


@pytest.mark.parametrize(
    ("label", "data"),
    [
        ("object dtype", pickle.dumps(np.array([None, 1], dtype=object), protocol=4)),
        ("float array", pickle.dumps(np.zeros(3), protocol=4)),
        ("int scalar", pickle.dumps(np.int64(3), protocol=2)),
        ("ndarray called directly", b"cnumpy\nndarray\n(K\x01tR."),
        ("_codecs.encode with another codec", b"c_codecs\nencode\n(X\x03\x00\x00\x00abcX\x04\x00\x00\x00rot13tR."),
        ("_reconstruct of a subclass", b"cnumpy._core.multiarray\n_reconstruct\n(cnumpy\ndtype\nK\x00\x85C\x01btR."),
    ],
)
def test_numpy_and_codec_globals_build_only_what_pair_sets_hold(label: str, data: bytes) -> None:
    with pytest.raises(InputError) as caught:
        restricted_loads(data, "odd.bin")
    assert str(caught.value).startswith("odd.bin: "), label
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("label", "data", "message"),
    [
        ("truncated", pickle.dumps((JPEG_LIKE, [True]), protocol=4)[:-40], "truncated or not a pickle"),
        ("empty", b"", "truncated or not a pickle"),
        ("text", b"Abe_Vigoda 1 2\nnot a pickle at all\n", "truncated or not a pickle"),
        ("persistent id", b"\x80\x02P0\n.", "truncated or not a pickle"),
    ],
)
def test_a_broken_or_foreign_file_is_one_input_error(label: str, data: bytes, message: str) -> None:
    with pytest.raises(InputError) as caught:
        restricted_loads(data, "bad.bin")
    assert message in str(caught.value), label
    assert not isinstance(caught.value, UnsafePickleError), label
