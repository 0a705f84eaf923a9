"""What ``arcface-trt embed`` reads: a folder of crops, a text file listing images, or a ``.npy`` of crops.

Each may be local or in an object store (``s3://bucket/crops/``, ``s3://bucket/list.txt``,
``s3://bucket/crops.npy``), and a list file may name local paths and URIs alike.

Every input becomes a :class:`Source`: an ordered list of unique keys (the ``path`` column
of the output) and a thread-safe ``load(key)`` that returns a BGR uint8 crop or an
:class:`Unreadable` reason. Local keys are absolute paths (``os.path.abspath``, symlinks
kept as they are) so that ``--resume`` recognises them whatever the current folder; URIs
are kept as written; rows of a ``.npy`` file are keyed ``<location>#<row>``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arcface_trt.embed.npy_rows import NpyLayout, NpyRows, read_layout
from arcface_trt.errors import InputError
from arcface_trt.fileio import read_regular_file
from arcface_trt.inputs import IMAGE_SUFFIXES, decode_image, list_images, read_image
from arcface_trt.objectstore import ObjectStore, is_uri, join, local_path, parent, too_large
from arcface_trt.redact import redact

#: Largest image object read from an object store (a face crop is a few kB).
MAX_IMAGE_BYTES = 64 << 20
#: Largest list file read (about ten million paths).
MAX_LIST_BYTES = 1 << 30


@dataclass(frozen=True)
class Unreadable:
    """Why a key gave no crop (reported in the summary; the run goes on)."""

    reason: str


@dataclass
class Source:
    """An ordered set of keys to embed and how to load each one."""

    kind: str  # "folder" | "list" | "npy" | "paths"
    location: str
    keys: list[str]
    load: Callable[[str], np.ndarray | Unreadable]
    #: Keys given more than once in a list file (embedded once).
    duplicates: int = 0
    #: Where the rows of a ``.npy`` source are (a Ray run's tasks read them from there).
    npy: NpyLayout | None = None
    #: How object-store keys are reached.
    store: ObjectStore = field(default_factory=ObjectStore.default)


def load_image_file(key: str) -> np.ndarray | Unreadable:
    """Decode one local image file with the project's decoder, or say why it cannot be read."""
    image = read_image(Path(key))
    if image is not None:
        return image
    if not os.path.exists(key):
        return Unreadable("file not found")
    if not os.path.isfile(key):
        return Unreadable("not a file")
    return Unreadable("not a decodable image")


def decoded(data: bytes, key: str) -> np.ndarray | Unreadable:
    """The bytes of the image ``key`` decoded, or the reason they are not an image (or too large to be a crop)."""
    if len(data) > MAX_IMAGE_BYTES:  # a Ray run's file reader reads whole files: the bound is kept here
        return Unreadable(too_large(key, len(data), MAX_IMAGE_BYTES))
    image = decode_image(data)
    return image if image is not None else Unreadable("not a decodable image")


def image_loader(store: ObjectStore) -> Callable[[str], np.ndarray | Unreadable]:
    """``load(key)`` for image keys: local paths through the file system, URIs through ``store``."""

    def load(key: str) -> np.ndarray | Unreadable:
        if not is_uri(key):
            return load_image_file(key)
        try:
            return decoded(store.read_bytes(key, MAX_IMAGE_BYTES), key)
        except InputError as exc:
            reason = str(exc)
            return Unreadable("file not found" if reason.startswith("not found:") else reason)

    return load


def _images_in(location: str, store: ObjectStore) -> list[str]:
    """Image URIs under a folder URI (recursive, sorted); InputError when there is none."""
    keys = [uri for uri, _ in store.list_files(location) if Path(uri).suffix.lower() in IMAGE_SUFFIXES]
    if not keys:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {redact(location)}")
    return keys


def _list_entries(text: str, base: str, where: str) -> tuple[list[str], int]:
    """Keys of a list file's lines (URIs as written, paths absolute from ``base``) and the duplicates dropped."""
    keys: list[str] = []
    seen: set[str] = set()
    duplicates = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if is_uri(line):
            key = line
        elif os.path.isabs(local_path(os.path.expanduser(line))):
            key = os.path.abspath(local_path(os.path.expanduser(line)))
        elif is_uri(base):
            key = join(base, line)  # relative to a list file in an object store: beside it there
        else:
            # Relative entries are relative to the list file's folder, not the current one.
            key = os.path.abspath(os.path.join(base, os.path.expanduser(line)))
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        keys.append(key)
    if not keys:
        raise InputError(f"{where}: lists no image paths (one path a line; '#' starts a comment)")
    return keys, duplicates


def _list_text(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"{where}: not a UTF-8 text file of image paths (give a folder, a list file or a .npy)"
        ) from None


def _npy_source(location: str, store: ObjectStore) -> Source:
    layout = read_layout(location, store)
    rows = NpyRows(layout, store)
    rows.check_values()  # a .npy of floats that holds no crops is bad input, refused before any work
    keys = [f"{location}#{i}" for i in range(layout.rows)]
    offset = len(location) + 1

    def load(key: str) -> np.ndarray:
        row = int(key[offset:])
        return rows.read(row, row + 1)[0]

    return Source("npy", location, keys, load, npy=layout, store=store)


def _remote_source(uri: str, store: ObjectStore) -> Source:
    info = store.info(uri.rstrip("/"))
    kind = info.type.name  # File | Directory | NotFound
    if kind == "NotFound":
        raise InputError(f"input not found: {redact(uri)}")
    if kind == "Directory" or uri.endswith("/"):
        return Source("folder", uri, _images_in(uri, store), image_loader(store), store=store)
    suffix = Path(uri).suffix.lower()
    if suffix == ".npy":
        return _npy_source(uri, store)
    if suffix in IMAGE_SUFFIXES:
        raise InputError(f"{redact(uri)} is a single image: give a folder of crops, a list file or a .npy")
    text = _list_text(store.read_bytes(uri, MAX_LIST_BYTES), redact(uri))
    keys, duplicates = _list_entries(text, parent(uri), redact(uri))
    return Source("list", uri, keys, image_loader(store), duplicates, store=store)


def _local_source(path: Path, store: ObjectStore) -> Source:
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_dir():
        keys = [os.path.abspath(p) for p in list_images(path)]
        return Source("folder", os.path.abspath(path), keys, image_loader(store), store=store)
    if path.suffix.lower() == ".npy":
        return _npy_source(os.path.abspath(path), store)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"{path} is a single image: give a folder of crops, a text file listing paths, or a .npy")
    data = read_regular_file(path, MAX_LIST_BYTES, "list file")
    keys, duplicates = _list_entries(_list_text(data, str(path)), str(path.parent), str(path))
    return Source("list", os.path.abspath(path), keys, image_loader(store), duplicates, store=store)


def open_source(input_path: str | Path, store: ObjectStore | None = None) -> Source:
    """The source behind ``input_path`` (a local path or an object-store URI): a folder, a ``.npy``, or a list file.

    ``store``: how object-store URIs are reached (default: :meth:`ObjectStore.default`).
    """
    store = store or ObjectStore.default()
    text = str(input_path)
    if is_uri(text):
        return _remote_source(text, store)
    return _local_source(Path(local_path(text)), store)


def source_from_paths(paths: list[str | Path], store: ObjectStore | None = None) -> Source:
    """A source over image paths or URIs given in memory (duplicates embedded once)."""
    keys = list(dict.fromkeys(str(p) if is_uri(p) else os.path.abspath(p) for p in paths))
    if not keys:
        raise InputError("no image paths given")
    store = store or ObjectStore.default()
    return Source("paths", "<paths>", keys, image_loader(store), len(paths) - len(keys), store=store)


@dataclass
class ReadCrops:
    """The crops read from a source, in its order, and how many of its entries were not readable images."""

    source: Source
    crops: list[np.ndarray]
    skipped: int


def read_crops(input_path: str | Path, limit: int | None = None) -> ReadCrops:
    """Up to ``limit`` readable crops of a folder, list file or ``.npy`` (None: all), skipping unreadable entries.

    A source without a single readable crop is an :class:`InputError`.
    """
    source = open_source(input_path)
    crops: list[np.ndarray] = []
    skipped = 0
    for key in source.keys:
        crop = source.load(key)
        if isinstance(crop, Unreadable):
            skipped += 1
            continue
        crops.append(crop)
        if limit is not None and len(crops) == limit:
            break
    if not crops:
        raise InputError(f"none of the {len(source.keys)} entries of {source.location} is a readable image")
    return ReadCrops(source, crops, skipped)
