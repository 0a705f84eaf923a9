"""The on-disk format of ``arcface-trt embed``: committed part files while running, one file at the end.

While a run goes on, rows are committed in chunks to ``<out>.parts/part-NNNNNN.parquet``;
each part is written to a temporary file and renamed into place, so a part that exists is
complete and a killed run leaves a readable prefix. ``--resume`` reads the ``path`` column
of the committed parts (or of the finished output) and embeds only the keys not there;
keys are never in two parts, so every key ends up exactly once. When every key is done the
parts are merged, row group by row group, into the final output (again a temporary file
renamed into place) and the parts folder is removed.

Rules that keep this exact:

- The parts folder is exactly ``<out>.parts/`` and holds a marker file (:data:`MARKER`)
  written when the tool made it. A folder without the marker is someone else's: it is
  refused, never used or deleted. Only files the tool names (parts, the marker, its own
  temporary files) are ever deleted, and only from folders with the marker.
- While ``<out>.parts/`` exists it is the truth and an older ``<out>`` is ignored (it is
  replaced at the end). Resuming a finished output first copies it into the first part of
  a new parts folder, built aside and renamed into place.
- ``--resume`` checks what it continues before embedding anything: each part's row count
  against the count the part's own metadata records, every key once across parts and
  output, every key in the input list, every embedding finite, and the input spec the
  rows were computed through (recorded in every file's metadata). A mismatch is refused,
  naming the part.
- ``.npy`` output is two files: ``<stem>.npy`` ``(N, D)`` float32 and ``<stem>.index.parquet``
  (the same columns without ``embedding``; row ``i`` describes row ``i``). The ``.npy`` is
  renamed into place first and the index last: an index means a complete pair.
- ``<out>.lock`` serialises runs on the same output.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import stat
import tempfile
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from arcface_trt.errors import InputError, short_repr
from arcface_trt.fileio import (
    atomic_writer,
    current_umask,
    is_temporary_name,
    remove_stale_temporaries,
    write_text_atomic,
)
from arcface_trt.filelock import file_lock
from arcface_trt.lazy import lazy_import
from arcface_trt.model.input_spec import InputSpec

log = logging.getLogger("arcface_trt")

pa = lazy_import("pyarrow")
pq = lazy_import("pyarrow.parquet")

FORMAT_TAG = "arcface-trt-embed/1"
FORMATS = ("parquet", "npy")
COLUMNS = ("path", "embedding", "backend", "precision", "model_sha256")
_PART = re.compile(r"part-(\d{6,})\.parquet")
#: The file that marks a parts folder as made by this tool.
MARKER = ".arcface-trt-parts"
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


def _read_parquet(path: Path, columns: list[str] | None = None) -> Any:
    return _parquet(path, lambda: pq.read_table(path, columns=columns))


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


def _is_ours(folder: Path) -> bool:
    """True when ``folder`` is a real folder (not a link) holding the marker this tool writes."""
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return False
        marker = folder / MARKER
        return stat.S_ISREG(os.lstat(marker).st_mode) and marker.read_text(encoding="utf-8").startswith(FORMAT_TAG)
    except (OSError, UnicodeDecodeError):
        return False


def _new_parts_folder(parent: Path, name: str) -> Path:
    """A new, uniquely named folder with the marker in it (``name`` and 8 random characters)."""
    folder = Path(tempfile.mkdtemp(prefix=name, dir=parent))
    os.chmod(folder, 0o777 & ~current_umask())  # mkdtemp makes 0700; give it what a plain mkdir would
    write_text_atomic(folder / MARKER, f"{FORMAT_TAG}\n")
    return folder


def _delete_ours(folder: Path) -> None:
    """Delete what this tool wrote in a marked folder (parts, marker, temporary files), then the folder if empty.

    Anything else in it is left, with the folder and a warning: the tool never deletes what it did not write.
    The marker goes last, so a deletion cut short is finished by the next run.
    """
    for entry in os.scandir(folder):
        ours = _PART.fullmatch(entry.name) or is_temporary_name(entry.name)
        if ours and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
    (folder / MARKER).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        log.warning("left %s in place: it holds files arcface-trt did not write", folder)


def _remove_tree(folder: Path) -> None:
    """Rename a marked folder aside (one atomic step) and delete what the tool wrote in it.

    A half-deleted folder never looks live; an interrupted deletion leaves a ``.old-*`` folder
    that the next run on this output finishes deleting.
    """
    trash = Path(tempfile.mkdtemp(prefix=f"{folder.name}.old-", dir=folder.parent))
    os.replace(folder, trash)  # over the empty folder mkdtemp made
    _delete_ours(trash)


def _parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def _aside_name(parts_dir: Path) -> re.Pattern[str]:
    """Names of the folders this tool sets aside beside a parts folder: ``<parts>.new-*`` and ``<parts>.old-*``."""
    return re.compile(re.escape(parts_dir.name) + r"\.(?:new|old)-[a-z0-9_]{8}")


def _final_marker(out: Path) -> Path:
    """The file a finished output writes last: its presence means the output is complete."""
    return index_path(out) if output_format(out) == "npy" else out


def check_output(out: str | Path, resume: bool, overwrite: bool) -> str:
    """Refuse what opening ``out`` would refuse, cheaply and before any model loads; the output format."""
    fmt = output_format(out)
    out = Path(out)
    if resume and overwrite:
        raise InputError("give either --resume or --overwrite, not both")
    parts = _parts_dir(out)
    if os.path.lexists(parts) and not _is_ours(parts):  # someone else's folder: never used, never deleted
        raise InputError(
            f"{parts} exists but was not made by arcface-trt embed (no {MARKER} in it): "
            "move it away, or choose another --out"
        )
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

    def __init__(self, out: Path, model_sha256: str, dim: int, input_spec: dict[str, Any] | None = None) -> None:
        self.out = out
        self.format = output_format(out)
        self.parts_dir = _parts_dir(out)
        self.model_sha256 = model_sha256
        self.dim = dim
        self.input_spec = input_spec
        self.done: set[str] = set()
        self.rows_committed = 0
        self._next = 0
        self._seed: Path | None = None  # finished output to copy into part 0 before the first commit
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
    ) -> Iterator[PartStore]:
        """Lock the output and load, checked, what a previous run committed (see the module docstring).

        ``inputs``: the run's keys; rows already embedded for keys outside it are refused (None: not checked).
        ``input_spec``: the spec of this run, recorded in every file; rows of another spec are refused.
        """
        store = cls(Path(out), model_sha256, dim, input_spec)
        store.out.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(store.out.with_name(store.out.name + ".lock")):
            store._load(resume, overwrite, None if inputs is None else frozenset(inputs))
            yield store

    def _load(self, resume: bool, overwrite: bool, inputs: frozenset[str] | None) -> None:
        check_output(self.out, resume, overwrite)
        aside = _aside_name(self.parts_dir)
        for entry in self.parts_dir.parent.iterdir():
            if aside.fullmatch(entry.name) and _is_ours(entry):  # set aside by an interrupted clean-up or copy
                _delete_ours(entry)
        if self.parts_dir.is_dir():
            if overwrite:
                _remove_tree(self.parts_dir)
            else:
                self._load_parts(inputs)
                return
        if _final_marker(self.out).is_file() and not overwrite:
            marker = _final_marker(self.out)
            self._check_spec(_parquet(marker, lambda: pq.read_schema(marker)).metadata, self.out)
            self._seed_rows = self._take(_final_row_groups(self.out, self.format), self.out, inputs)
            self._seed = self.out

    def _parts(self) -> list[Path]:
        """Committed parts in commit order."""
        parts = [p for p in self.parts_dir.iterdir() if _PART.fullmatch(p.name)]
        return sorted(parts, key=lambda p: int(_PART.fullmatch(p.name).group(1)))  # type: ignore[union-attr]

    def _load_parts(self, inputs: frozenset[str] | None) -> None:
        # A part that was being written when the run died (this run holds the output's lock).
        remove_stale_temporaries(self.parts_dir, older_than_s=0)
        for part in self._parts():
            metadata = _parquet(part, lambda part=part: pq.read_schema(part)).metadata or {}
            if metadata.get(b"format") != FORMAT_TAG.encode() or ROWS_KEY not in metadata:
                raise InputError(f"{part} was not written by arcface-trt embed: move it away, or --overwrite")
            self._check_spec(metadata, part)
            rows = self._take(_row_groups_of(part), part, inputs)
            if str(rows).encode() != metadata[ROWS_KEY]:
                raise InputError(
                    f"{part} holds {rows} rows but was written with {metadata[ROWS_KEY].decode(errors='replace')}: "
                    "it was changed after the run wrote it; move it away, or --overwrite"
                )
            self._next = max(self._next, int(_PART.fullmatch(part.name).group(1)) + 1)  # type: ignore[union-attr]

    def _check_spec(self, metadata: dict[bytes, bytes] | None, where: Path) -> None:
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

    def _take(self, tables: Iterable[Any], where: Path, inputs: frozenset[str] | None) -> int:
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
    def _part_path(self, number: int) -> Path:
        return self.parts_dir / f"part-{number:06d}.parquet"

    def _start_parts(self) -> None:
        """Create the marked parts folder (built aside, renamed into place); a resumed finished output is part 0."""
        if self.parts_dir.is_dir():
            return
        building = _new_parts_folder(self.parts_dir.parent, f"{self.parts_dir.name}.new-")
        if self._seed is not None:
            with atomic_writer(building / self._part_path(0).name) as handle:
                writer = pq.ParquetWriter(handle, schema(self.dim, rows=self._seed_rows, input_spec=self.input_spec))
                for table in _final_row_groups(self.out, self.format):
                    writer.write_table(table)
                writer.close()
            self._next = 1
            self._seed = None
        os.replace(building, self.parts_dir)

    def commit(self, keys: list[str], embeddings: np.ndarray, backend: str, precision: str) -> None:
        """Write one chunk as a new part, atomically; its keys count as done from now on."""
        if not keys:
            return
        self._start_parts()
        table = make_table(keys, embeddings, backend, precision, self.model_sha256, self.input_spec)
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
            self._start_parts()  # nothing embedded at all: still write a valid (empty) output
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
            writer = pq.ParquetWriter(handle, schema(self.dim, input_spec=self.input_spec))
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
            writer = pq.ParquetWriter(handle, schema(self.dim, with_embedding=False, input_spec=self.input_spec))
            for table in self._row_groups(parts):
                writer.write_table(table.drop_columns(["embedding"]))
            writer.close()
        return rows


def _parquet(path: Path, read: Any) -> Any:
    """``read()`` of an output file the run did not just write; a foreign or damaged file is an InputError."""
    try:
        return read()
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError/... for foreign or damaged files
        raise InputError(f"cannot read {path} as embed output: {' '.join(str(exc).split())}") from None


def _row_groups_of(part: Path) -> Iterator[Any]:
    handle = _parquet(part, lambda: pq.ParquetFile(part))
    for i in range(handle.num_row_groups):
        yield _parquet(part, lambda i=i: handle.read_row_group(i))


def _final_row_groups(out: Path, fmt: str) -> Iterator[Any]:
    """Row groups of a finished output in the output schema (a ``.npy`` pair is re-joined)."""
    if fmt == "parquet":
        yield from _row_groups_of(out)
        return
    embeddings = _parquet(out, lambda: np.load(out, mmap_mode="r", allow_pickle=False))
    index = index_path(out)
    rows = _parquet(index, lambda: pq.ParquetFile(index).metadata.num_rows)
    if embeddings.ndim != 2 or len(embeddings) != rows:
        raise InputError(f"{out} has shape {embeddings.shape} but {index.name} lists {rows} rows")
    start = 0
    for table in _row_groups_of(index):
        end = start + table.num_rows
        emb = np.asarray(embeddings[start:end], dtype=np.float32)
        column = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1), pa.float32()), emb.shape[1])
        yield table.add_column(1, "embedding", column).cast(schema(emb.shape[1]))
        start = end
