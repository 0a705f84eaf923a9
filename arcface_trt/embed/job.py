"""Bulk embedding: a source of crops -> the pipeline (or Ray) -> committed parts -> the output, and its summary.

The results equal ``embedder.encode`` on the same crops (see :mod:`arcface_trt.embed.pipeline`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from arcface_trt.backends import create_embedder
from arcface_trt.backends.base import Embedder
from arcface_trt.backends.spec import BackendSpec
from arcface_trt.collapse import CollapseCheck, check_collapse
from arcface_trt.config import ValidationSection
from arcface_trt.embed.batch import EmbeddedBatch
from arcface_trt.embed.model_ref import fetch_model
from arcface_trt.embed.parts import PartStore, check_output
from arcface_trt.embed.pipeline import MeasuredRun, StageRates, iter_embeddings, reader_threads
from arcface_trt.embed.ray_cluster import actor_range
from arcface_trt.embed.ray_job import RayEmbedJob
from arcface_trt.embed.sources import open_source, source_from_paths
from arcface_trt.errors import InputError
from arcface_trt.objectstore import ObjectStore, is_uri
from arcface_trt.records import Record

log = logging.getLogger("arcface_trt")

#: Rows per committed part: what a killed run can lose at most, and the output's row-group size.
DEFAULT_CHUNK_SIZE = 2048
#: The collapse guard's threshold when none is given (``validation.collapse_cosine``'s default).
DEFAULT_COLLAPSE_COSINE = ValidationSection().collapse_cosine

#: ``progress(advance, todo)``: called once with ``(0, todo)`` before the first batch, then per batch.
ProgressHook = Callable[[int, int], None]


@dataclass
class EmbeddedPaths:
    """In-memory result of :func:`embed_paths`: ``embeddings[i]`` belongs to ``paths[i]``."""

    paths: list[str]
    embeddings: np.ndarray
    unreadable: list[dict[str, str]] = field(default_factory=list)


@dataclass
class EmbedSummary(Record):
    """What a run did. ``images_per_s`` is ``embedded / embed_elapsed_s`` (reading, embedding, committing
    parts; with Ray also Ray's start and the actors' start-up, which ``first_batch_s`` shows: the seconds
    until the first embedded batch arrived); ``elapsed_s`` is the whole call, model loading and the final
    merge included."""

    input: str
    output: str
    format: str
    backend: str
    requested_backend: str
    precision: str | None
    model_path: str
    model_sha256: str
    total: int
    embedded: int
    skipped_existing: int
    unreadable_count: int
    rows_in_output: int
    elapsed_s: float
    embed_elapsed_s: float
    images_per_s: float
    first_batch_s: float | None = None
    duplicates: int = 0
    batch_size: int = 0
    threads: int | None = None
    fallback_reason: str | None = None
    ray: bool = False
    ray_address: str | None = None
    #: ``started`` (a local instance for this run) or ``joined`` (a running cluster); None without Ray.
    ray_cluster: str | None = None
    #: The actor pool, e.g. ``2 CPU actors x 4 threads``.
    ray_actors: str | None = None
    threads_per_actor: int | None = None
    #: Each stage alone and the overlapped pipeline, measured in this run (single process; None with Ray
    #: or when the run is too short to measure).
    stages: StageRates | None = None
    unreadable: list[dict[str, str]] = field(default_factory=list)
    #: The input spec the embeddings were computed through (also in the output's metadata).
    input_spec: dict[str, Any] | None = None
    #: The collapse guard on the seven real sample faces (None: not run, on Ray).
    collapse: CollapseCheck | None = None


def _make_embedder(embedder: Embedder | None, spec: BackendSpec | None) -> Embedder:
    """The given embedder, else one made from ``spec`` (else from the configured backend)."""
    if embedder is not None:
        if spec is not None:
            raise InputError("give either a ready embedder or a backend spec, not both")
        return embedder
    return create_embedder(spec or BackendSpec.resolve())


def _check_sizes(
    batch_size: int | None, threads: int | None, chunk_size: int, threads_per_actor: int | None = None
) -> None:
    sizes = (
        ("--batch-size", batch_size),
        ("--threads", threads),
        ("--chunk-size", chunk_size),
        ("--threads-per-actor", threads_per_actor),
    )
    for name, value in sizes:
        if value is not None and value < 1:
            raise InputError(f"{name} must be at least 1, got {value}")


def embed_paths(
    paths: Sequence[str | Path],
    *,
    embedder: Embedder | None = None,
    spec: BackendSpec | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
) -> EmbeddedPaths:
    """Embed image files in memory (for pipelines): unreadable files are listed, never raised.

    Paths are returned absolute, in the given order, duplicates once. Pass ``embedder`` to reuse
    a loaded backend, or a :class:`BackendSpec` to make one (default: the configured backend).
    ``batch_size``: rows per ``forward`` call (default: the backend's batch size).
    """
    _check_sizes(batch_size, threads, 1)
    source = source_from_paths(list(paths))
    emb = _make_embedder(embedder, spec)
    keys: list[str] = []
    chunks: list[np.ndarray] = []
    unreadable: list[dict[str, str]] = []
    for batch in iter_embeddings(emb, source.keys, source.load, batch_size, threads):
        keys.extend(batch.keys)
        chunks.append(batch.embeddings)
        unreadable.extend({"path": k, "reason": r} for k, r in batch.failures)
    return EmbeddedPaths(keys, np.concatenate(chunks, axis=0), unreadable)


def embed_to_file(
    input_path: str | Path,
    out: str | Path,
    *,
    embedder: Embedder | None = None,
    spec: BackendSpec | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    resume: bool = False,
    overwrite: bool = False,
    progress: ProgressHook | None = None,
    ray: bool = False,
    ray_address: str | None = None,
    ray_num_cpus: int | None = None,
    collapse_cosine: float = DEFAULT_COLLAPSE_COSINE,
    ray_actors: int | tuple[int, int] | str | None = None,
    ray_threads_per_actor: int | None = None,
) -> EmbedSummary:
    """Embed every crop of ``input_path`` (folder, list file or ``.npy``) into ``out`` (``.parquet`` or ``.npy``).

    ``input_path``, ``out`` and the spec's model may be local paths or object-store URIs
    (``s3://bucket/key``: endpoint and region from the spec's ``tensorrt`` settings, as the engine
    store's). The backend is ``embedder`` (a loaded one), else the one ``spec`` describes (default:
    the configured backend); ``batch_size`` is the rows per ``forward`` call (default: the backend's).
    Rows are committed every ``chunk_size`` rows, so an interrupted run keeps its work and
    ``resume=True`` embeds only what the output lacks (every key ends up exactly once).
    ``ray=True`` runs the embedding on Ray Data: ``ray_address`` joins a cluster (else a local
    instance with ``ray_num_cpus`` CPUs is started); ``ray_actors`` (``N``, ``(MIN, MAX)`` or
    ``"MIN,MAX"``) and ``ray_threads_per_actor`` size the actor pool. The output is the same.
    See docs/embed.md.
    Before embedding, the collapse guard runs the backend on the seven real sample faces and the
    summary warns when their embeddings collapse above ``collapse_cosine`` (not on Ray).
    """
    started = time.perf_counter()
    _check_sizes(batch_size, threads, chunk_size, ray_threads_per_actor)
    use_ray = ray or ray_address is not None
    if use_ray and embedder is not None:
        raise InputError("a ready embedder cannot be shipped to Ray workers; give a backend spec instead")
    if embedder is None:
        spec = spec or BackendSpec.resolve()
    # The model as the user named it (a URI stays a URI in the summary, wherever it was installed).
    model_named = spec.model_path if spec is not None and spec.model_path is not None else None
    store = ObjectStore.from_section(spec.tensorrt.tensorrt) if spec is not None else ObjectStore.default()
    actors = actor_range(ray_actors)
    fmt = check_output(out, resume, overwrite, store)  # before loading a model: refusals come at once
    source = open_source(input_path, store)
    if use_ray:
        job = RayEmbedJob(spec, batch_size, store, ray_address, ray_num_cpus, actors, ray_threads_per_actor)
        model = job.model
        requested, fallback_reason, size = job.spec.backend, None, job.batch_size
        precision: str | None = None  # known once an actor has reported it
        collapse = None
    else:
        if spec is not None and spec.model_path is not None and is_uri(spec.model_path):
            spec = dataclasses.replace(spec, model_path=str(fetch_model(spec.model_path, store)))
        emb = _make_embedder(embedder, spec)
        emb.ensure_ready()
        model, size = emb.model, batch_size or emb.batch_size
        info = emb.info()
        requested, fallback_reason, precision = info.requested_backend, info.fallback_reason, info.precision
        collapse = check_collapse(emb, collapse_cosine)
        if collapse.collapsed:
            log.warning("%s", collapse.message())

    with PartStore.open(
        out,
        model.sha256,
        model.embedding_dim,
        resume=resume,
        overwrite=overwrite,
        inputs=source.keys,
        input_spec=model.input_spec.to_dict(),
        store=store,
    ) as parts:
        todo = [key for key in source.keys if key not in parts.done]
        if progress is not None:
            progress(0, len(todo))
        measured: MeasuredRun | None = None
        if use_ray:
            batches = job.run(source, todo) if todo else iter(())
        else:
            measured = MeasuredRun(emb, todo, source.load, size, threads)
            batches = iter(measured)
        loop = _commit_all(batches, parts, chunk_size, progress, len(todo))
        rows = parts.finish()

    ran_on = job if use_ray and todo else None
    return EmbedSummary(
        input=source.location,
        output=str(out) if is_uri(out) else str(Path(out).resolve()),
        format=fmt,
        backend=loop.backend or requested,
        requested_backend=requested,
        precision=loop.precision or precision,
        model_path=model_named if model_named is not None and is_uri(model_named) else model.path,
        model_sha256=model.sha256,
        total=len(source.keys),
        embedded=loop.embedded,
        skipped_existing=len(source.keys) - len(todo),
        unreadable_count=len(loop.unreadable),
        rows_in_output=rows,
        elapsed_s=time.perf_counter() - started,
        embed_elapsed_s=loop.elapsed,
        first_batch_s=loop.first_batch,
        images_per_s=loop.embedded / loop.elapsed if loop.elapsed > 0 else 0.0,
        duplicates=source.duplicates,
        batch_size=size,
        threads=None if use_ray else reader_threads(emb, threads),
        fallback_reason=fallback_reason,
        ray=use_ray,
        # The address joined: --ray-address, or the cluster $RAY_ADDRESS named.
        ray_address=ran_on.connection.address if ran_on and ran_on.connection else ray_address,
        ray_cluster=ran_on.connection.how if ran_on and ran_on.connection else None,
        ray_actors=ran_on.plan.describe() if ran_on and ran_on.plan else None,
        threads_per_actor=ran_on.plan.threads if ran_on and ran_on.plan else None,
        stages=measured.rates if measured is not None else None,
        unreadable=loop.unreadable,
        input_spec=model.input_spec.to_dict(),
        collapse=collapse,
    )


@dataclass
class _LoopResult:
    embedded: int = 0
    elapsed: float = 0.0
    first_batch: float | None = None
    backend: str | None = None
    precision: str | None = None
    unreadable: list[dict[str, str]] = field(default_factory=list)


def _commit_all(
    batches: Iterator[EmbeddedBatch], store: PartStore, chunk_size: int, progress: ProgressHook | None, todo: int
) -> _LoopResult:
    """Drain ``batches`` into ``store`` in parts of ``chunk_size`` rows: after each batch fewer rows wait uncommitted.

    A batch that crosses a part's end is split across parts; a part ends early only where the backend or
    precision of the batches changes, and at the end.
    """
    result = _LoopResult()
    keys: list[str] = []
    chunks: list[np.ndarray] = []
    started = time.perf_counter()

    def commit(rows: int | None = None) -> None:
        """Commit the first ``rows`` pending rows (default: all of them) as one part."""
        if not keys:
            return
        embeddings = np.concatenate(chunks, axis=0)
        rows = len(keys) if rows is None else rows
        store.commit(keys[:rows], embeddings[:rows], result.backend or "", result.precision or "")
        del keys[:rows]
        chunks[:] = [embeddings[rows:]] if keys else []

    for batch in batches:
        if result.first_batch is None:
            result.first_batch = time.perf_counter() - started
        if batch.keys and (batch.backend, batch.precision) != (result.backend, result.precision):
            commit()  # a part holds one backend/precision (Ray workers could differ)
            result.backend, result.precision = batch.backend, batch.precision
        keys.extend(batch.keys)
        chunks.append(batch.embeddings)
        result.embedded += len(batch.keys)
        result.unreadable.extend({"path": k, "reason": r} for k, r in batch.failures)
        while len(keys) >= chunk_size:
            commit(chunk_size)
        if progress is not None:
            progress(len(batch.keys) + len(batch.failures), todo)
    commit()
    result.elapsed = time.perf_counter() - started
    return result
