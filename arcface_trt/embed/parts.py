"""The output format of ``arcface-trt embed``: committed parts while running, one file (or pair) at the end.

While a run goes on, rows are committed in chunks to ``<out>.parts/part-NNNNNN.parquet``;
each part exists only complete (see :mod:`~arcface_trt.embed.storage` for how each medium,
a local folder or an object store, makes sure of that), so a killed run leaves a readable
prefix. ``--resume`` reads the ``path`` column of the committed parts (or of the finished
output) and embeds only the keys not there; keys are never in two parts, so every key ends
up exactly once. When every key is done the parts are merged, row group by row group, into
the final output and the parts folder is removed.

Rules that keep this exact:

- The parts folder is exactly ``<out>.parts/`` and holds a marker (:data:`MARKER`) written
  when the tool made it. A folder without the marker is someone else's: it is refused, never
  used or deleted. Only what the tool names (parts, the marker, its own temporary files) is
  ever deleted, and only from folders with the marker.
- While ``<out>.parts/`` is live it is the truth and an older ``<out>`` is ignored (it is
  replaced at the end). Resuming a finished output first copies it into the first part of
  a new parts folder, which becomes live only once that copy is complete.
- ``--resume`` checks what it continues before embedding anything: each part's row count
  against the count the part's own metadata records, every key once across parts and
  output, every key in the input list, every embedding finite, and the input spec the
  rows were computed through (recorded in every file's metadata). A mismatch is refused,
  naming the part.
- ``.npy`` output is two files: ``<stem>.npy`` ``(N, D)`` float32 and ``<stem>.index.parquet``
  (the same columns without ``embedding``; row ``i`` describes row ``i``). The ``.npy`` is
  written first and the index last: an index means a complete pair.
- ``<out>.lock`` serialises runs on the same local output; it is deleted when a run ends.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from arcface_trt.embed.npy_rows import read_npy_header
from arcface_trt.embed.storage import FORMAT_TAG, MARKER, Storage, part_name, storage_for
from arcface_trt.errors import InputError, short_repr
from arcface_trt.lazy import lazy_import
from arcface_trt.model.input_spec import InputSpec
from arcface_trt.objectstore import ObjectStore

log = logging.getLogger("arcface_trt")

pa = lazy_import("pyarrow")
pq = lazy_import("pyarrow.parquet")

__all__ = ["FORMAT_TAG", "MARKER", "PartStore", "check_output", "read_embeddings"]

FORMATS = ("parquet", "npy")
COLUMNS = ("path", "embedding", "backend", "precision", "model_sha256")
#: Schema metadata key of a part: how many rows it was written with.
ROWS_KEY = b"rows"
#: Schema metadata key of every file: the input spec (JSON) the embeddings were computed through.
SPEC_KEY = b"input_spec"


def schema(
    dim: int, with_embedding: bool = True, rows: int | None = None, input_spec: dict[str, Any] | None = None
) -> Any:
    """Arrow schema of the output: ``embedding`` is a fixed-size list of ``dim`` float32.

    A part's schema also records its ``rows`` (checked when a run is resumed); every file's, the
    ``input_spec`` the embeddings were computed through.
    """
    fields = [pa.field("path", pa.string(), nullable=False)]
    if with_embedding:
        fields.append(pa.field("embedding", pa.list_(pa.float32(), dim), nullable=False))
    fields += [pa.field(name, pa.string(), nullable=False) for name in ("backend", "precision", "model_sha256")]
    metadata = {"format": FORMAT_TAG, "embedding_dim": str(dim)}
    if rows is not None:
        metadata[ROWS_KEY.decode()] = str(rows)
    if input_spec is not None:
        metadata[SPEC_KEY.decode()] = json.dumps(input_spec, sort_keys=True)
    return pa.schema(fields, metadata=metadata)


def recorded_spec(metadata: dict[bytes, bytes] | None) -> InputSpec | None:
    """The input spec a file's schema metadata records; None when it records none or not a readable one."""
    raw = (metadata or {}).get(SPEC_KEY)
    if raw is None:
        return None
    try:
        return InputSpec.from_dict(json.loads(raw))
    except (ValueError, RecursionError):
        return None


def output_format(out: str | Path) -> str:
    """``parquet`` or ``npy`` from the output's suffix; anything else is an InputError."""
    suffix = Path(str(out)).suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    if suffix == ".npy":
        return "npy"
    raise InputError(f"--out must end in .parquet or .npy, got {out}")


def index_location(npy_out: str | Path) -> str:
    """The index file (or object) that goes with a ``.npy`` output: ``<stem>.index.parquet`` beside it."""
    text = str(npy_out)
    return text[: -len(".npy")] + ".index.parquet"


def index_path(npy_out: str | Path) -> Path:
    """The index file that goes with a local ``.npy`` output."""
    return Path(index_location(npy_out))


def make_table(
    keys: list[str],
    embeddings: np.ndarray,
    backend: str,
    precision: str,
    model_sha256: str,
    input_spec: dict[str, Any] | None = None,
) -> Any:
    """Rows of the output schema from keys and their ``(n, D)`` embeddings (a part's schema: rows recorded)."""
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
    return pa.Table.from_arrays(columns, schema=schema(dim, rows=n, input_spec=input_spec))


def embeddings_of(table: Any) -> np.ndarray:
    """The ``embedding`` column of a table as an ``(n, D)`` float32 array."""
    column = table.column("embedding")
    dim = column.type.list_size
    if column.num_chunks == 0 or table.num_rows == 0:
        return np.zeros((0, dim), dtype=np.float32)
    values = pa.concat_arrays([chunk.flatten() for chunk in column.chunks])
    return values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, dim)


def _final_location(out: str, fmt: str) -> str:
    """The file a finished output writes last: its presence means the output is complete."""
    return index_location(out) if fmt == "npy" else out


def read_embeddings(out: str | Path, store: ObjectStore | None = None) -> tuple[list[str], np.ndarray]:
    """Read a finished output (``.parquet``, or ``.npy`` with its index; a local path or a URI): keys and embeddings.

    ``store``: how an object-store URI is reached (default: :meth:`ObjectStore.default`).
    """
    fmt = output_format(out)
    storage = storage_for(out, store or ObjectStore.default())
    where = storage.out
    if fmt == "parquet" and not storage.is_file(where):
        raise InputError(f"embed output not found: {where}")
    if fmt == "npy" and not (storage.is_file(where) and storage.is_file(index_location(where))):
        raise InputError(f"embed output not found: {where} with its index {Path(index_location(where)).name}")
    keys: list[str] = []
    chunks: list[np.ndarray] = []
    for table in _final_row_groups(storage, fmt):
        keys.extend(table.column("path").to_pylist())
        chunks.append(embeddings_of(table))
    dim = _embedding_dim(storage, fmt)
    return keys, np.concatenate(chunks, axis=0) if chunks else np.zeros((0, dim), np.float32)


def _embedding_dim(storage: Storage, fmt: str) -> int:
    if fmt == "npy":
        return int(_npy_header(storage)[1][1])
    return int(_parquet_file(storage, storage.out).schema_arrow.field("embedding").type.list_size)


def check_output(out: str | Path, resume: bool, overwrite: bool, store: ObjectStore | None = None) -> str:
    """Refuse what opening ``out`` would refuse, cheaply and before any model loads; the output format.

    An output that cannot be written (a folder without write permission, a missing bucket,
    credentials that may not write) is refused here too.
    """
    fmt = output_format(out)
    storage = storage_for(out, store or ObjectStore.default())
    _check_output(storage, fmt, resume, overwrite)
    storage.check_writable()
    return fmt


def _check_output(storage: Storage, fmt: str, resume: bool, overwrite: bool) -> None:
    if resume and overwrite:
        raise InputError("give either --resume or --overwrite, not both")
    state = storage.parts_state()
    if state == "foreign":  # someone else's folder: never used, never deleted
        raise InputError(
            f"{storage.parts} exists but was not made by arcface-trt embed (no {MARKER} in it): "
            "move it away, or choose another --out"
        )
    index = index_location(storage.out)
    lone_npy = fmt == "npy" and storage.is_file(storage.out) and not storage.is_file(index) and state == "absent"
    if lone_npy and not overwrite:  # someone else's array: never replace it silently
        raise InputError(f"{storage.out} exists without its index {Path(index).name}: pass --overwrite to replace it")
    if resume or overwrite:
        return
    if state == "ours":
        raise InputError(
            f"{storage.parts} holds an unfinished run: pass --resume to continue it, or --overwrite to start again"
        )
    if storage.is_file(_final_location(storage.out, fmt)):
        raise InputError(
            f"{storage.out} exists: pass --resume to embed only the paths it lacks, or --overwrite to replace it"
        )


class PartStore:
    """Committed parts of one output, and the merge into the final file(s).

    Use as ``with PartStore.open(out, model_sha256, dim, resume=..., overwrite=...) as store``;
    ``store.done`` holds the keys already embedded (to skip), ``store.commit(...)`` adds a
    part, ``store.finish()`` writes the final output and removes the parts.
    """

    def __init__(self, storage: Storage, model_sha256: str, dim: int, input_spec: dict[str, Any] | None = None) -> None:
        self.storage = storage
        self.out = storage.out
        self.format = output_format(storage.out)
        self.model_sha256 = model_sha256
        self.dim = dim
        self.input_spec = input_spec
        self.done: set[str] = set()
        self.rows_committed = 0
        self._next = 0
        self._live = False  # a live parts folder exists
        self._seed = False  # a finished output to copy into part 0 before the first commit
        self._seed_rows = 0

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    @contextlib.contextmanager
    def open(
        cls,
        out: str | Path,
        model_sha256: str,
        dim: int,
        resume: bool,
        overwrite: bool,
        inputs: Collection[str] | None = None,
        input_spec: dict[str, Any] | None = None,
        store: ObjectStore | None = None,
    ) -> Iterator[PartStore]:
        """Lock the output and load, checked, what a previous run committed (see the module docstring).

        ``inputs``: the run's keys; rows already embedded for keys outside it are refused (None: not checked).
        ``input_spec``: the spec of this run, recorded in every file; rows of another spec are refused.
        ``store``: how an object-store URI is reached (default: :meth:`ObjectStore.default`).
        """
        store_ = cls(storage_for(out, store or ObjectStore.default()), model_sha256, dim, input_spec)
        with store_.storage.lock():
            store_._load(resume, overwrite, None if inputs is None else frozenset(inputs))
            yield store_

    def _load(self, resume: bool, overwrite: bool, inputs: frozenset[str] | None) -> None:
        storage = self.storage
        _check_output(storage, self.format, resume, overwrite)
        storage.clean_leftovers()
        if storage.parts_state() == "ours":
            if overwrite:
                storage.retire_parts()
            else:
                self._live = True
                self._load_parts(inputs)
                return
        final = _final_location(self.out, self.format)
        if storage.is_file(final) and not overwrite:
            self._check_spec(_parquet_file(storage, final).schema_arrow.metadata, final)
            self._seed_rows = self._take(_final_row_groups(storage, self.format), self.out, inputs)
            self._seed = True

    def _load_parts(self, inputs: frozenset[str] | None) -> None:
        storage = self.storage
        storage.drop_temporaries()  # a part that was being written when the run died
        for name in storage.part_names():
            part = storage.part(name)
            metadata = _parquet_file(storage, part).schema_arrow.metadata or {}
            if metadata.get(b"format") != FORMAT_TAG.encode() or ROWS_KEY not in metadata:
                raise InputError(f"{part} was not written by arcface-trt embed: move it away, or --overwrite")
            self._check_spec(metadata, part)
            rows = self._take(_row_groups_of(storage, part), part, inputs)
            if str(rows).encode() != metadata[ROWS_KEY]:
                raise InputError(
                    f"{part} holds {rows} rows but was written with {metadata[ROWS_KEY].decode(errors='replace')}: "
                    "it was changed after the run wrote it; move it away, or --overwrite"
                )
            self._next = max(self._next, int(name[len("part-") : -len(".parquet")]) + 1)

    def _check_spec(self, metadata: dict[bytes, bytes] | None, where: str) -> None:
        """Refuse rows computed through another input spec than this run's (files that record none pass)."""
        if self.input_spec is None or SPEC_KEY not in (metadata or {}):
            return
        have, want = recorded_spec(metadata), InputSpec.from_dict(self.input_spec)
        if have is None or want is None or have.key() != want.key():
            shown = have.describe() if have is not None else "unreadable"
            raise InputError(
                f"{where} was computed through another input spec ({shown}; now "
                f"{want.describe() if want else 'unknown'}): use another --out, or --overwrite"
            )

    def _take(self, tables: Iterable[Any], where: str, inputs: frozenset[str] | None) -> int:
        """Check rows a run already embedded (a part, a finished output) and count their keys done; rows read.

        Refused, naming ``where``: another model or embedding size, a key seen before (in this
        file or an earlier part), a key the input does not list, a NaN or infinite embedding.
        """
        rows = 0
        for table in tables:
            others = set(table.column("model_sha256").unique().to_pylist()) - {self.model_sha256}
            if others or table.column("embedding").type.list_size != self.dim:
                seen = sorted(others or {self.model_sha256})[0]
                raise InputError(
                    f"{where} was written with another model (sha256 {str(seen)[:12]}..., dim "
                    f"{table.column('embedding').type.list_size}; now {self.model_sha256[:12]}..., dim {self.dim}): "
                    "use another --out, or --overwrite"
                )
            for key in table.column("path").to_pylist():
                if key in self.done:
                    raise InputError(f"{where} repeats {short_repr(key)}, embedded already: --overwrite to start again")
                if inputs is not None and key not in inputs:
                    raise InputError(
                        f"{where} holds {short_repr(key)}, which this input does not list: "
                        "resume with the input of that run, or use another --out, or --overwrite"
                    )
                self.done.add(key)
            if not np.isfinite(embeddings_of(table)).all():
                raise InputError(f"{where} holds NaN or infinite embeddings: --overwrite to embed again")
            rows += table.num_rows
        return rows

    # -- writing ----------------------------------------------------------------------------
    def _start_parts(self) -> None:
        """Create the marked parts folder; a resumed finished output becomes its part 0."""
        if self._live:
            return
        seed = None
        if self._seed:

            def seed(handle: Any) -> None:
                writer = pq.ParquetWriter(handle, schema(self.dim, rows=self._seed_rows, input_spec=self.input_spec))
                for table in _final_row_groups(self.storage, self.format):
                    writer.write_table(table)
                writer.close()

            self._next = 1
        self.storage.create_parts(seed)
        self._live, self._seed = True, False

    def commit(self, keys: list[str], embeddings: np.ndarray, backend: str, precision: str) -> None:
        """Write one chunk as a new part, atomically; its keys count as done from now on."""
        if not keys:
            return
        self._start_parts()
        table = make_table(keys, embeddings, backend, precision, self.model_sha256, self.input_spec)
        self.storage.write_part(part_name(self._next), lambda handle: pq.write_table(table, handle))
        self._next += 1
        self.done.update(keys)
        self.rows_committed += len(keys)

    def finish(self) -> int:
        """Merge the parts into the final output, remove them; the number of rows in the output.

        With nothing new committed, a finished output is left untouched.
        """
        if not self._live:
            if self._seed:  # resumed a finished output and found nothing to add
                return len(self.done)
            self._start_parts()  # nothing embedded at all: still write a valid (empty) output
        parts = [self.storage.part(name) for name in self.storage.part_names()]
        rows = self._merge_parquet(parts) if self.format == "parquet" else self._merge_npy(parts)
        self.storage.retire_parts()
        self._live = False
        return rows

    def _row_groups(self, parts: list[str]) -> Iterator[Any]:
        for part in parts:
            yield from _row_groups_of(self.storage, part)

    def _merge_parquet(self, parts: list[str]) -> int:
        rows = 0
        with self.storage.write_file(self.out) as handle:
            writer = pq.ParquetWriter(handle, schema(self.dim, input_spec=self.input_spec))
            for table in self._row_groups(parts):
                writer.write_table(table)
                rows += table.num_rows
            writer.close()
        return rows

    def _merge_npy(self, parts: list[str]) -> int:
        rows = sum(_parquet_file(self.storage, p).metadata.num_rows for p in parts)
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype("<f4")),
            "fortran_order": False,
            "shape": (rows, self.dim),
        }
        with self.storage.write_file(self.out) as handle:
            np.lib.format.write_array_header_2_0(handle, header)
            for table in self._row_groups(parts):
                handle.write(embeddings_of(table).astype("<f4", copy=False).tobytes())
        # The index goes last: an index beside a .npy means the pair is complete.
        with self.storage.write_file(index_location(self.out)) as handle:
            writer = pq.ParquetWriter(handle, schema(self.dim, with_embedding=False, input_spec=self.input_spec))
            for table in self._row_groups(parts):
                writer.write_table(table.drop_columns(["embedding"]))
            writer.close()
        return rows


def _reading(location: str, read: Any) -> Any:
    """``read()`` of an output file the run did not just write; a foreign or damaged file is an InputError."""
    try:
        return read()
    except InputError:
        raise
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError/... for foreign or damaged files
        raise InputError(f"cannot read {location} as embed output: {' '.join(str(exc).split())}") from None


def _parquet_file(storage: Storage, location: str) -> Any:
    """The Parquet file at ``location`` (its footer read and checked)."""
    return _reading(location, lambda: pq.ParquetFile(storage.open_input(location)))


def _row_groups_of(storage: Storage, location: str) -> Iterator[Any]:
    handle = _parquet_file(storage, location)
    for i in range(handle.num_row_groups):
        yield _reading(location, lambda i=i: handle.read_row_group(i))


def _npy_header(storage: Storage) -> tuple[int, tuple[int, ...], Any]:
    """(data offset, shape, dtype) of a finished ``.npy`` output, checked to be ``(N, D)`` float32."""
    offset, shape, dtype, fortran = read_npy_header(storage.open_input(storage.out), storage.out)
    if len(shape) != 2 or fortran or dtype != np.dtype("<f4"):
        raise InputError(f"{storage.out} is not an (N, D) float32 array of embeddings (shape {shape}, dtype {dtype})")
    return offset, shape, dtype


def _final_row_groups(storage: Storage, fmt: str) -> Iterator[Any]:
    """Row groups of a finished output in the output schema (a ``.npy`` pair is re-joined)."""
    if fmt == "parquet":
        yield from _row_groups_of(storage, storage.out)
        return
    offset, (n, dim), _ = _npy_header(storage)
    index = index_location(storage.out)
    rows = _parquet_file(storage, index).metadata.num_rows
    if n != rows:
        raise InputError(f"{storage.out} has shape {(n, dim)} but {Path(index).name} lists {rows} rows")
    array = storage.open_input(storage.out)
    start = 0
    for table in _row_groups_of(storage, index):
        end = start + table.num_rows
        size, at = (end - start) * dim * 4, offset + start * dim * 4
        data = _reading(storage.out, lambda size=size, at=at: array.read_at(size, at))
        emb = np.frombuffer(data, dtype="<f4").reshape(-1, dim)
        if len(emb) != end - start:
            raise InputError(f"{storage.out} ends early: shorter than its header says")
        column = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1), pa.float32()), dim)
        yield table.add_column(1, "embedding", column).cast(schema(dim))
        start = end
