"""The model of a run where it is not one local file on every machine: by URI, or through Ray's object store.

A model given by URI (``--onnx-path s3://bucket/models/w600k_r50.onnx``) is downloaded, with the
external data files it names (read beside it), into the cache of the machine that needs it. A
local model of a Ray run travels as its files' bytes in Ray's object store. Either way each
machine installs it as ``<cache>/models/sha256/<sha256>/<file name>`` (built in a temporary
folder, renamed into place) and uses it only when its sha256 is the one the driver computed.
The file name is kept, so engines built from it carry the model's own name.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arcface_trt.errors import InputError
from arcface_trt.fileio import current_umask
from arcface_trt.lazy import lazy_import
from arcface_trt.model.input_spec import InputSettings
from arcface_trt.model.inspect import ModelInfo, external_data_files, inspect_model
from arcface_trt.objectstore import ObjectStore, basename, join, parent
from arcface_trt.paths import models_dir

onnx = lazy_import("onnx")

#: Largest model file (or external data file) read from an object store.
MAX_MODEL_BYTES = 16 << 30
_CHUNK = 8 << 20


def _install_root() -> Path:
    return models_dir() / "sha256"


def _cached(name: str, sha256: str) -> Path | None:
    """The installed copy of a model, when one with this sha256 is there and still has it."""
    path = _install_root() / sha256 / name
    if path.is_file():
        try:
            if inspect_model(path).sha256 == sha256:
                return path
        except InputError:
            pass  # a damaged copy: installed again below
    return None


def _install(name: str, fill: Callable[[Path], None], expected_sha256: str | None, origin: str) -> Path:
    """Write a model's files with ``fill(folder)`` into a temporary folder, check it, and rename it into place."""
    root = _install_root()
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".install-", dir=root))
    try:
        fill(building)
        info = inspect_model(building / name)
        if expected_sha256 is not None and info.sha256 != expected_sha256:
            raise InputError(
                f"the model {origin} has sha256 {info.sha256[:12]}... here, not the {expected_sha256[:12]}... "
                "the driver read: it differs between machines, or changed during the run"
            )
        os.chmod(building, 0o777 & ~current_umask())  # mkdtemp makes 0700
        final = root / info.sha256
        try:
            os.rename(building, final)
        except OSError:  # installed already (another process, or the same content under another name)
            for item in sorted(building.rglob("*")):
                if item.is_file():
                    target = final / item.relative_to(building)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(item, target)  # the same bytes (the sha256 says so): readers are unaffected
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return final / name


def _download(store: ObjectStore, uri: str, dst: Path) -> None:
    remote = store.resolve(uri)
    with (
        store.errors("read the model", uri),
        remote.fs.open_input_stream(remote.path) as source,
        open(dst, "wb") as out,
    ):
        written = 0
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > MAX_MODEL_BYTES:
                raise InputError(f"{uri} is larger than {MAX_MODEL_BYTES:,} bytes, the most a model file may be")
            out.write(chunk)


def _downloader(uri: str, store: ObjectStore) -> Callable[[Path], None]:
    """``fill(folder)``: the model at ``uri`` and the external data files it names (read beside it) into ``folder``."""
    name = basename(uri)

    def fill(folder: Path) -> None:
        _download(store, uri, folder / name)
        try:
            model = onnx.load(str(folder / name), load_external_data=False)
        except Exception:  # not an ONNX model at all: inspect_model says so, naming the file
            return
        for data in external_data_files(model):
            if os.path.isabs(data) or ".." in Path(data).parts:
                raise InputError(f"{uri} names external data outside its folder: {data!r}")
            (folder / data).parent.mkdir(parents=True, exist_ok=True)
            _download(store, join(parent(uri), data), folder / data)

    return fill


def fetch_model(uri: str, store: ObjectStore, expected_sha256: str | None = None) -> Path:
    """The model at ``uri`` (and its external data, read beside it) installed in this machine's cache; its path.

    With ``expected_sha256`` an installed copy is reused, and a download that differs is refused.
    """
    name = basename(uri)
    if expected_sha256 is not None and (cached := _cached(name, expected_sha256)) is not None:
        return cached
    return _install(name, _downloader(uri, store), expected_sha256, uri)


def inspect_remote_model(uri: str, store: ObjectStore, settings: InputSettings | None = None) -> ModelInfo:
    """What the model at ``uri`` is (input, output, input spec under ``settings``, sha256), from a download deleted
    afterwards.

    A Ray driver needs only these facts: the workers read the URI themselves, so nothing is kept here.
    """
    root = _install_root()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".inspect-", dir=root) as folder:
        _downloader(uri, store)(Path(folder))
        return dataclasses.replace(inspect_model(Path(folder) / basename(uri), settings), path=uri)


@dataclass(frozen=True)
class ModelRef:
    """How a Ray worker gets the model (picklable): a URI it reads, or the files' bytes in Ray's object store."""

    name: str
    sha256: str
    uri: str | None = None
    #: A Ray ObjectRef to ``{relative file name: bytes}`` (the ``.onnx`` and its external data files).
    files: Any = None

    @classmethod
    def of_local(cls, info: ModelInfo, put: Callable[[Any], Any]) -> ModelRef:
        """The local model ``info`` describes, its files handed to ``put`` (``ray.put``)."""
        path = Path(info.path)
        names = (path.name, *info.external_data)
        files = {name: (path.parent / name).read_bytes() for name in names}
        return cls(path.name, info.sha256, files=put(files))

    def install(self, store: ObjectStore, get: Callable[[Any], Any]) -> Path:
        """On a worker: the model in this machine's cache, checked against the driver's sha256."""
        if self.uri is not None:
            return fetch_model(self.uri, store, self.sha256)
        if (cached := _cached(self.name, self.sha256)) is not None:
            return cached

        def fill(folder: Path) -> None:
            for name, data in get(self.files).items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)

        return _install(self.name, fill, self.sha256, self.name)
