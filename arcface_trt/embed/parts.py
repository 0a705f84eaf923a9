"""The on-disk format of ``arcface-trt embed``: committed part files while running, one file at the end.

While a run goes on, rows are committed in chunks to ``<out>.parts/part-NNNNNN.parquet``;
each part is written to a temporary file and renamed into place, so a part that exists is
complete and a killed run leaves a readable prefix. ``--resume`` reads the ``path`` column
of the committed parts (or of the finished output) and embeds only the keys not there;
keys are never in two parts, so every key ends up exactly once. When every key is done the
parts are merged, row group by row group, into the final output (again a temporary file
renamed into place) and the parts folder is removed.

Rules that keep this exact:

- While ``<out>.parts/`` exists it is the truth and an older ``<out>`` is ignored (it is
  replaced at the end). Resuming a finished output first copies it into the first part of
  a new parts folder, built aside and renamed into place.
- ``.npy`` output is two files: ``<stem>.npy`` ``(N, D)`` float32 and ``<stem>.index.parquet``
  (the same columns without ``embedding``; row ``i`` describes row ``i``). The ``.npy`` is
  renamed into place first and the index last: an index means a complete pair.
- ``<out>.lock`` serialises runs on the same output.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from arcface_trt.errors import InputError
from arcface_trt.fileio import atomic_writer
from arcface_trt.filelock import file_lock
from arcface_trt.lazy import lazy_import

pa = lazy_import("pyarrow")
pq = lazy_import("pyarrow.parquet")

FORMAT_TAG = "arcface-trt-embed/1"
FORMATS = ("parquet", "npy")
COLUMNS = ("path", "embedding", "backend", "precision", "model_sha256")
_PART = re.compile(r"^part-(\d{6,})\.parquet$")


def schema(dim: int, with_embedding: bool = True) -> Any:
    """Arrow schema of the output: ``embedding`` is a fixed-size list of ``dim`` float32."""
    fields = [pa.field("path", pa.string(), nullable=False)]
    if with_embedding:
        fields.append(pa.field("embedding", pa.list_(pa.float32(), dim), nullable=False))
    fields += [pa.field(name, pa.string(), nullable=False) for name in ("backend", "precision", "model_sha256")]
    return pa.schema(fields, metadata={"format": FORMAT_TAG, "embedding_dim": str(dim)})


def output_format(out: str | Path) -> str:
    """``parquet`` or ``npy`` from the output's suffix; anything else is an InputError."""
    suffix = Path(out).suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    if suffix == ".npy":
        return "npy"
    raise InputError(f"--out must end in .parquet or .npy, got {out}")


def index_path(npy_out: str | Path) -> Path:
    """The index file that goes with a ``.npy`` output."""
    npy_out = Path(npy_out)
    return npy_out.with_name(f"{npy_out.stem}.index.parquet")


def make_table(keys: list[str], embeddings: np.ndarray, backend: str, precision: str, model_sha256: str) -> Any:
    """Rows of the output schema from keys and their ``(n, D)`` embeddings."""
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    n, dim = emb.shape
    if n != len(keys):
        raise ValueError(f"{len(keys)} keys but {n} embeddings")
    columns = [
        pa.array(keys, pa.string()),
        pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1), pa.float32()), dim),
        pa.array([backend] * n, pa.string()),
        pa.array([precision] * n, pa.string()),
        pa.array([model_sha256] * n, pa.string()),
    ]
    return pa.Table.from_arrays(columns, schema=schema(dim))


def embeddings_of(table: Any) -> np.ndarray:
    """The ``embedding`` column of a table as an ``(n, D)`` float32 array."""
    column = table.column("embedding")
    dim = column.type.list_size
    if column.num_chunks == 0 or table.num_rows == 0:
        return np.zeros((0, dim), dtype=np.float32)
    values = pa.concat_arrays([chunk.flatten() for chunk in column.chunks])
    return values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, dim)


def _read_parquet(path: Path, columns: list[str] | None = None) -> Any:
    try:
        return pq.read_table(path, columns=columns)
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError/... for foreign or damaged files
        raise InputError(f"cannot read {path} as embed output: {exc}") from None


def read_embeddings(out: str | Path) -> tuple[list[str], np.ndarray]:
    """Read a finished output (``.parquet``, or ``.npy`` with its index): keys and ``(N, D)`` embeddings."""
    out = Path(out)
    if output_format(out) == "parquet":
        if not out.is_file():
            raise InputError(f"embed output not found: {out}")
        table = _read_parquet(out, ["path", "embedding"])
        return table.column("path").to_pylist(), embeddings_of(table)
    index = index_path(out)
    if not index.is_file() or not out.is_file():
        raise InputError(f"embed output not found: {out} with its index {index.name}")
    keys = _read_parquet(index, ["path"]).column("path").to_pylist()
    embeddings = np.load(out, allow_pickle=False)
    if len(embeddings) != len(keys):
        raise InputError(f"{out} has {len(embeddings)} rows but {index.name} lists {len(keys)}")
    return keys, embeddings


@dataclass
class _Existing:
    keys: list[str]
    model_sha256: set[str]
    dim: int | None


def _existing_rows(path: Path, index: Path | None = None) -> _Existing:
    """Keys and model hashes already in a part or a finished output."""
    table = _read_parquet(index or path, ["path", "model_sha256"])
    dim = None
    if index is None:
        dim = pq.read_schema(path).field("embedding").type.list_size
    return _Existing(
        table.column("path").to_pylist(),
        set(table.column("model_sha256").unique().to_pylist()),
        dim,
    )


def _remove_tree(folder: Path) -> None:
    """Rename a folder aside (one atomic step) and delete it, so a half-deleted folder never looks live."""
    if not folder.exists():
        return
    trash = folder.with_name(f"{folder.name}.old-{os.getpid()}")
    os.replace(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def _final_marker(out: Path) -> Path:
    """The file a finished output writes last: its presence means the output is complete."""
    return index_path(out) if output_format(out) == "npy" else out


def check_output(out: str | Path, resume: bool, overwrite: bool) -> str:
    """Refuse what opening ``out`` would refuse, cheaply and before any model loads; the output format."""
    fmt = output_format(out)
    out = Path(out)
    if resume and overwrite:
        raise InputError("give either --resume or --overwrite, not both")
    lone_npy = fmt == "npy" and out.is_file() and not index_path(out).is_file() and not _parts_dir(out).is_dir()
    if lone_npy and not overwrite:  # someone else's array: never replace it silently
        raise InputError(f"{out} exists without its index {index_path(out).name}: pass --overwrite to replace it")
    if resume or overwrite:
        return fmt
    if _parts_dir(out).is_dir():
        raise InputError(
            f"{_parts_dir(out)} holds an unfinished run: pass --resume to continue it, or --overwrite to start again"
        )
    if _final_marker(out).is_file():
        raise InputError(f"{out} exists: pass --resume to embed only the paths it lacks, or --overwrite to replace it")
    return fmt


class PartStore:
    """Committed parts of one output, and the merge into the final file(s).

    Use as ``with PartStore.open(out, model_sha256, dim, resume=..., overwrite=...) as store``;
    ``store.done`` holds the keys already embedded (to skip), ``store.commit(...)`` adds a
    part, ``store.finish()`` writes the final output and removes the parts.
    """

    def __init__(self, out: Path, model_sha256: str, dim: int) -> None:
        self.out = out
        self.format = output_format(out)
        self.parts_dir = _parts_dir(out)
        self.model_sha256 = model_sha256
        self.dim = dim
        self.done: set[str] = set()
        self.rows_committed = 0
        self._next = 0
        self._seed: Path | None = None  # finished output to copy into part 0 before the first commit

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    @contextlib.contextmanager
    def open(cls, out: str | Path, model_sha256: str, dim: int, resume: bool, overwrite: bool) -> Iterator[PartStore]:
        """Lock the output and load what a previous run committed (see the module docstring)."""
        store = cls(Path(out), model_sha256, dim)
        store.out.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(store.out.with_name(store.out.name + ".lock")):
            store._load(resume, overwrite)
            yield store

    def _load(self, resume: bool, overwrite: bool) -> None:
        check_output(self.out, resume, overwrite)
        for stale in self.out.parent.glob(f"{glob_escape(self.parts_dir.name)}.*"):
            if stale.is_dir():  # parts folders renamed aside by an interrupted clean-up or copy
                shutil.rmtree(stale, ignore_errors=True)
        if self.parts_dir.is_dir():
            if overwrite:
                _remove_tree(self.parts_dir)
            else:
                self._load_parts()
                return
        if _final_marker(self.out).is_file() and not overwrite:
            index = index_path(self.out) if self.format == "npy" else None
            existing = _existing_rows(self.out, index)
            self._check_model(existing, self.out)
            self.done.update(existing.keys)
            self._seed = self.out

    def _parts(self) -> list[Path]:
        """Committed parts in commit order."""
        parts = [p for p in self.parts_dir.iterdir() if _PART.match(p.name)]
        return sorted(parts, key=lambda p: int(_PART.match(p.name).group(1)))  # type: ignore[union-attr]

    def _load_parts(self) -> None:
        for leftover in self.parts_dir.glob(".*.tmp"):  # a part that was being written when the run died
            leftover.unlink(missing_ok=True)
        for part in self._parts():
            existing = _existing_rows(part)
            self._check_model(existing, part)
            self.done.update(existing.keys)
            self._next = max(self._next, int(_PART.match(part.name).group(1)) + 1)  # type: ignore[union-attr]

    def _check_model(self, existing: _Existing, where: Path) -> None:
        others = existing.model_sha256 - {self.model_sha256}
        if others or (existing.dim is not None and existing.dim != self.dim):
            raise InputError(
                f"{where} was written with another model (sha256 {sorted(others or existing.model_sha256)[0][:12]}...,"
                f" now {self.model_sha256[:12]}...): use another --out, or --overwrite"
            )

    # -- writing ----------------------------------------------------------------------------
    def _part_path(self, number: int) -> Path:
        return self.parts_dir / f"part-{number:06d}.parquet"

    def _start_parts(self) -> None:
        """Create the parts folder; when resuming a finished output, with that output as part 0."""
        if self.parts_dir.is_dir():
            return
        if self._seed is None:
            self.parts_dir.mkdir(parents=True)
            return
        building = self.parts_dir.with_name(f"{self.parts_dir.name}.new-{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        with atomic_writer(building / self._part_path(0).name) as handle:
            writer = pq.ParquetWriter(handle, schema(self.dim))
            for table in _final_row_groups(self.out, self.format):
                writer.write_table(table)
            writer.close()
        os.replace(building, self.parts_dir)
        self._next = 1
        self._seed = None

    def commit(self, keys: list[str], embeddings: np.ndarray, backend: str, precision: str) -> None:
        """Write one chunk as a new part, atomically; its keys count as done from now on."""
        if not keys:
            return
        self._start_parts()
        table = make_table(keys, embeddings, backend, precision, self.model_sha256)
        with atomic_writer(self._part_path(self._next)) as handle:
            pq.write_table(table, handle)
        self._next += 1
        self.done.update(keys)
        self.rows_committed += len(keys)

    def finish(self) -> int:
        """Merge the parts into the final output, remove them; the number of rows in the output.

        With nothing new committed, a finished output is left untouched.
        """
        if not self.parts_dir.is_dir():
            if self._seed is not None:  # resumed a finished output and found nothing to add
                return len(self.done)
            self.parts_dir.mkdir(parents=True)  # nothing embedded at all: still write a valid (empty) output
        parts = self._parts()
        rows = self._merge_parquet(parts) if self.format == "parquet" else self._merge_npy(parts)
        _remove_tree(self.parts_dir)
        return rows

    def _row_groups(self, parts: list[Path]) -> Iterator[Any]:
        for part in parts:
            yield from _row_groups_of(part)

    def _merge_parquet(self, parts: list[Path]) -> int:
        rows = 0
        with atomic_writer(self.out) as handle:
            writer = pq.ParquetWriter(handle, schema(self.dim))
            for table in self._row_groups(parts):
                writer.write_table(table)
                rows += table.num_rows
            writer.close()
        return rows

    def _merge_npy(self, parts: list[Path]) -> int:
        rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype("<f4")),
            "fortran_order": False,
            "shape": (rows, self.dim),
        }
        with atomic_writer(self.out) as handle:
            np.lib.format.write_array_header_2_0(handle, header)
            for table in self._row_groups(parts):
                handle.write(embeddings_of(table).astype("<f4", copy=False).tobytes())
        # The index goes last: an index beside a .npy means the pair is complete.
        with atomic_writer(index_path(self.out)) as handle:
            writer = pq.ParquetWriter(handle, schema(self.dim, with_embedding=False))
            for table in self._row_groups(parts):
                writer.write_table(table.drop_columns(["embedding"]))
            writer.close()
        return rows


def glob_escape(name: str) -> str:
    """Escape glob metacharacters in a file name."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def _row_groups_of(part: Path) -> Iterator[Any]:
    handle = pq.ParquetFile(part)
    for i in range(handle.num_row_groups):
        yield handle.read_row_group(i)


def _final_row_groups(out: Path, fmt: str) -> Iterator[Any]:
    """Row groups of a finished output in the output schema (a ``.npy`` pair is re-joined)."""
    if fmt == "parquet":
        yield from _row_groups_of(out)
        return
    embeddings = np.load(out, mmap_mode="r", allow_pickle=False)
    start = 0
    for table in _row_groups_of(index_path(out)):
        end = start + table.num_rows
        emb = np.asarray(embeddings[start:end], dtype=np.float32)
        column = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1), pa.float32()), emb.shape[1])
        yield table.add_column(1, "embedding", column).cast(schema(emb.shape[1]))
        start = end
