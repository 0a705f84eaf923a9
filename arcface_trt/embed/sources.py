"""What ``arcface-trt embed`` reads: a folder of crops, a text file listing image paths, or a ``.npy`` of crops.

Every input becomes a :class:`Source`: an ordered list of unique keys (the ``path`` column
of the output) and a thread-safe ``load(key)`` that returns a BGR uint8 crop or an
:class:`Unreadable` reason. Keys are absolute paths (``os.path.abspath``, symlinks kept as
they are) so that ``--resume`` recognises them whatever the current folder; rows of a
``.npy`` file are keyed ``/abs/crops.npy#<row>``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arcface_trt.errors import InputError
from arcface_trt.inputs import IMAGE_SUFFIXES, list_images, load_npy, read_image


@dataclass(frozen=True)
class Unreadable:
    """Why a key gave no crop (reported in the summary; the run goes on)."""

    reason: str


@dataclass
class Source:
    """An ordered set of keys to embed and how to load each one."""

    kind: str  # "folder" | "list" | "npy"
    location: str
    keys: list[str]
    load: Callable[[str], np.ndarray | Unreadable]
    #: Keys given more than once in a list file (embedded once).
    duplicates: int = 0


def load_image_file(key: str) -> np.ndarray | Unreadable:
    """Decode one image file with the project's decoder, or say why it cannot be read."""
    image = read_image(Path(key))
    if image is not None:
        return image
    if not os.path.exists(key):
        return Unreadable("file not found")
    if not os.path.isfile(key):
        return Unreadable("not a file")
    return Unreadable("not a decodable image")


def _folder_source(folder: Path) -> Source:
    keys = [os.path.abspath(p) for p in list_images(folder)]
    return Source("folder", os.path.abspath(folder), keys, load_image_file)


def _list_source(list_file: Path) -> Source:
    try:
        text = list_file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"{list_file}: not a UTF-8 text file of image paths (give a folder, a list file or a .npy)"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read {list_file}: {exc.strerror or exc}") from None
    base = list_file.parent
    keys: list[str] = []
    seen: set[str] = set()
    duplicates = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        # Relative entries are relative to the list file's folder, not the current one.
        key = os.path.abspath(os.path.join(base, os.path.expanduser(line)))
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        keys.append(key)
    if not keys:
        raise InputError(f"{list_file}: lists no image paths (one path a line; '#' starts a comment)")
    return Source("list", os.path.abspath(list_file), keys, load_image_file, duplicates)


def _npy_source(npy: Path) -> Source:
    crops = load_npy(npy)
    crops.setflags(write=False)
    location = os.path.abspath(npy)
    keys = [f"{location}#{i}" for i in range(len(crops))]
    offset = len(location) + 1

    def load(key: str) -> np.ndarray:
        return crops[int(key[offset:])]

    return Source("npy", location, keys, load)


def open_source(input_path: str | Path) -> Source:
    """The source behind ``input_path``: a folder, a ``.npy`` file, or a text file listing image paths."""
    path = Path(input_path)
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_dir():
        return _folder_source(path)
    if path.suffix.lower() == ".npy":
        return _npy_source(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"{path} is a single image: give a folder of crops, a text file listing paths, or a .npy")
    return _list_source(path)


def source_from_paths(paths: list[str | Path]) -> Source:
    """A source over image paths given in memory (duplicates embedded once)."""
    keys = list(dict.fromkeys(os.path.abspath(p) for p in paths))
    if not keys:
        raise InputError("no image paths given")
    return Source("paths", "<paths>", keys, load_image_file, len(paths) - len(keys))


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
