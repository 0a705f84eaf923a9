"""Pair sets: face images and which pairs of them show the same person.

Three formats, chosen by the file's suffix:

- ``.bin``: InsightFace's validation files (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``), see
  :mod:`arcface_trt.verification.binfile`;
- ``.csv``: rows ``path_a,path_b,same`` (``same`` is 1/0 or true/false; an optional header row),
  image paths relative to the CSV's folder;
- anything else: an LFW-style ``pairs.txt``: an optional header line of one or two counts, then
  ``name n1 n2`` (same person) and ``name1 n1 name2 n2`` (different people) lines, images at
  ``<images root>/<name>/<name>_<nnnn>.<jpg|png|...>``.

Images are aligned face crops; each distinct image is decoded once.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arcface_trt.errors import InputError
from arcface_trt.inputs import IMAGE_SUFFIXES, decode_image, read_images
from arcface_trt.verification.binfile import read_bin

#: Largest pairs.txt or CSV read (LFW's pairs.txt is 100 kB).
MAX_TEXT_BYTES = 64 << 20


@dataclass
class PairSet:
    """Distinct images and the pairs over them: pair ``k`` is ``images[left[k]]`` and ``images[right[k]]``."""

    source: str
    #: ``insightface-bin`` | ``csv`` | ``lfw-pairs`` | ``identities``.
    format: str
    images: list[np.ndarray]
    #: Per image, where it came from (a path, or ``bin[i]``), for reports.
    names: list[str]
    left: np.ndarray
    right: np.ndarray
    issame: np.ndarray

    @property
    def same(self) -> int:
        """Number of same-person pairs."""
        return int(self.issame.sum())

    @property
    def different(self) -> int:
        """Number of different-person pairs."""
        return len(self.issame) - self.same


def _build(
    source: str,
    kind: str,
    keyed_pairs: Iterable[tuple[str, str, bool]],
    images: dict[str, np.ndarray],
    names: list[str] | None = None,
) -> PairSet:
    """A PairSet from pairs of image keys; ``images`` holds each key's image once (``names``: default the keys)."""
    index = {key: i for i, key in enumerate(images)}
    left, right, issame = [], [], []
    for a, b, same in keyed_pairs:
        left.append(index[a])
        right.append(index[b])
        issame.append(same)
    if not issame:
        raise InputError(f"{source}: holds no pairs")
    return PairSet(
        source=source,
        format=kind,
        images=list(images.values()),
        names=names if names is not None else list(images),
        left=np.array(left, dtype=np.int64),
        right=np.array(right, dtype=np.int64),
        issame=np.array(issame, dtype=bool),
    )


def read_bin_pairs(path: Path) -> PairSet:
    """An InsightFace ``.bin`` as a PairSet (identical encoded images are decoded and embedded once)."""
    encoded, issame = read_bin(path)
    images: dict[str, np.ndarray] = {}
    names: list[str] = []
    keys = []
    for i, data in enumerate(encoded):
        key = hashlib.sha256(data).hexdigest()
        if key not in images:
            image = decode_image(data)
            if image is None:
                raise InputError(f"{path}: bins[{i}] is not a decodable image")
            images[key] = image
            names.append(f"bin[{i}]")
        keys.append(key)
    pairs = zip(keys[0::2], keys[1::2], issame.tolist(), strict=True)
    return _build(str(path), "insightface-bin", pairs, images, names)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise InputError(f"pair-set file not found: {path}")
    if path.stat().st_size > MAX_TEXT_BYTES:
        raise InputError(f"{path}: larger than a pair list can be ({MAX_TEXT_BYTES >> 20} MiB at most)")
    try:
        return path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is not part of a path
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file of pairs") from None


def _load_images(pairs: list[tuple[str, str, bool]]) -> dict[str, np.ndarray]:
    """Each distinct image path of ``pairs``, decoded once; a missing or unreadable one is an InputError."""
    paths = list(dict.fromkeys(path for pair in pairs for path in pair[:2]))
    return dict(zip(paths, read_images([Path(p) for p in paths]), strict=True))


_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")


def read_csv_pairs(path: Path) -> PairSet:
    """Rows ``path_a,path_b,same`` (relative paths from the CSV's folder; the first row may be a header)."""
    rows = list(csv.reader(_read_text(path).splitlines()))
    pairs: list[tuple[str, str, bool]] = []
    first = True
    for number, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) != 3:
            raise InputError(f"{path}:{number}: expected path_a,path_b,same, got {len(row)} fields")
        flag = row[2].strip().lower()
        header, first = first, False
        if flag not in _TRUE + _FALSE:
            if header:
                continue
            raise InputError(f"{path}:{number}: 'same' must be 1/0 or true/false, got {row[2]!r}")
        a, b = (os.path.join(path.parent, cell.strip()) for cell in row[:2])
        pairs.append((a, b, flag in _TRUE))
    return _build(str(path), "csv", pairs, _load_images(pairs))


def _lfw_image(root: Path, name: str, number: str, line: str) -> str:
    """``root/name/name_0001.<suffix>``: the first suffix present (LFW variants ship .jpg or .png)."""
    if not (number.isascii() and number.isdigit()):
        raise InputError(f"{line}: image number must be an integer, got {number!r}")
    stem = root / name / f"{name}_{int(number):04d}"
    for suffix in IMAGE_SUFFIXES:
        candidate = stem.with_name(stem.name + suffix)
        if candidate.is_file():
            return str(candidate)
    return str(stem.with_name(stem.name + IMAGE_SUFFIXES[0]))


def read_lfw_pairs(path: Path, images_root: Path) -> PairSet:
    """An LFW ``pairs.txt``: ``name n1 n2`` same-person and ``name1 n1 name2 n2`` different-person lines."""
    if not images_root.is_dir():
        raise InputError(f"--images-root is not a folder: {images_root}")
    pairs: list[tuple[str, str, bool]] = []
    for number, raw in enumerate(_read_text(path).splitlines(), start=1):
        fields = raw.split()
        line = f"{path}:{number}"
        if not fields or fields[0].startswith("#"):
            continue
        if number == 1 and len(fields) <= 2 and all(f.isdigit() for f in fields):
            continue  # the header: number of folds and pairs per fold (or one count)
        if len(fields) == 3:
            name, first_number, second_number = fields
            a = _lfw_image(images_root, name, first_number, line)
            b = _lfw_image(images_root, name, second_number, line)
            same = True
        elif len(fields) == 4:
            a = _lfw_image(images_root, fields[0], fields[1], line)
            b = _lfw_image(images_root, fields[2], fields[3], line)
            same = False
        else:
            raise InputError(f"{line}: expected 'name n1 n2' or 'name1 n1 name2 n2', got {len(fields)} fields")
        pairs.append((a, b, same))
    return _build(str(path), "lfw-pairs", pairs, _load_images(pairs))


def load_pair_set(path: str | Path, images_root: str | Path | None = None) -> PairSet:
    """The pair set in ``path`` (format by suffix: ``.bin``, ``.csv``, else LFW ``pairs.txt`` under ``images_root``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".bin", ".csv") and images_root is not None:
        raise InputError(f"--images-root is for LFW pairs.txt files; {path.name} names its images itself")
    if suffix == ".bin":
        return read_bin_pairs(path)
    if suffix == ".csv":
        return read_csv_pairs(path)
    if images_root is None:
        raise InputError(f"{path} is read as an LFW pairs.txt, which needs --images-root (the folder of the images)")
    return read_lfw_pairs(path, Path(images_root))
