"""``arcface-trt embed --ray``: the same job on Ray Data, on a local instance or a multi-node cluster.

Pipeline, nothing assumed on the driver's disk:

- images: ``read_binary_files(paths, include_paths=True)`` (Ray Data's file reader, on local
  paths or object-store URIs) -> ``map_batches(decode_images)``: decoded and preprocessed in
  Ray tasks with the project's decoder and ``preprocess``;
- a ``.npy``: row ranges -> ``map_batches(read_npy_rows)``: each task reads its rows from the
  file's location (the driver reads only the header);
- -> ``map_batches(EmbedActor)``: an actor pool (:mod:`~arcface_trt.embed.ray_cluster` sizes
  it); each actor installs the model in its node's cache (a URI it reads, or the bytes the
  driver put in Ray's object store; the built-in model is regenerated), checks its sha256
  against the driver's, and runs ``forward`` + ``l2_normalize``;
- -> back to the driver in input order, which commits parts exactly like the single-process run.

Ray and Ray Data are imported only here and in ray_cluster, with an install hint.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from arcface_trt.backends import create_embedder
from arcface_trt.backends.spec import BackendSpec
from arcface_trt.embed.batch import EmbeddedBatch
from arcface_trt.embed.model_ref import ModelRef, inspect_remote_model
from arcface_trt.embed.npy_rows import NpyLayout, NpyRows
from arcface_trt.embed.ray_cluster import (
    ActorPlan,
    Connection,
    cluster_nodes,
    connected,
    plan_actors,
    worker_env,
)
from arcface_trt.embed.ray_errors import ray_failure
from arcface_trt.embed.reader import ReadBatch, read_batch
from arcface_trt.embed.sources import Source, Unreadable, decoded
from arcface_trt.errors import ArcFaceTrtError, InputError
from arcface_trt.inputs import crops_to_uint8
from arcface_trt.lazy import lazy_import
from arcface_trt.model.input_spec import InputSpec
from arcface_trt.model.inspect import ModelInfo, inspect_model
from arcface_trt.objectstore import ObjectStore, basename, is_uri
from arcface_trt.preprocess import l2_normalize, preprocess

ray = lazy_import("ray")
ray_data = lazy_import("ray.data")  # Ray Data ships as the ray[data] extra

#: Why a key Ray's file reader skipped gave no row (it was not there, or is a folder).
NOT_FOUND = "file not found"
#: CPUs a read or decode task reserves: two per CPU, so they run beside the actors.
_TASK_CPUS = 0.5


def _rows(keys: list[str], done: ReadBatch, side: int) -> dict[str, np.ndarray]:
    """A decoded batch as Ray rows in the order of ``keys``; a failed key keeps a row: its reason, a zero input."""
    inputs = np.zeros((len(keys), 3, side, side), dtype=np.float32)
    reasons = dict(done.failures)
    if done.inputs is not None:
        at = {key: i for i, key in enumerate(keys)}
        inputs[[at[key] for key in done.keys]] = done.inputs
    return {
        "path": np.array(keys, dtype=object),
        "input": inputs,
        "error": np.array([reasons.get(key, "") for key in keys], dtype=object),
    }


def decode_images(batch: dict[str, np.ndarray], prefix: str, spec: InputSpec) -> dict[str, np.ndarray]:
    """Ray task: decode and preprocess the files ``read_binary_files`` read; ``prefix + path`` is each key."""
    named = ((prefix + str(path), bytes(data)) for path, data in zip(batch["path"], batch["bytes"], strict=True))
    crops = {key: decoded(data, key) for key, data in named}
    keys = list(crops)
    return _rows(keys, read_batch(keys, crops.__getitem__, functools.partial(preprocess, spec=spec)), spec.side)


def read_npy_rows(
    batch: dict[str, np.ndarray],
    layout: NpyLayout,
    store: ObjectStore,
    spec: InputSpec,
) -> dict[str, np.ndarray]:
    """Ray task: read a run of rows of a ``.npy`` from its location and preprocess them."""
    rows = [int(r) for r in batch["row"]]
    raw = NpyRows(layout, store).read_raw(min(rows), max(rows) + 1)
    start = min(rows)

    def load(key: str) -> np.ndarray | Unreadable:
        row = int(key.rsplit("#", 1)[1])
        return crops_to_uint8(raw[row - start], f"{layout.location} row {row}")

    keys = [f"{layout.location}#{row}" for row in rows]
    return _rows(keys, read_batch(keys, load, functools.partial(preprocess, spec=spec)), spec.side)


class EmbedActor:
    """Ray actor: one embedder, made once from the model installed on this node and checked against the driver's."""

    def __init__(self, spec: BackendSpec, model: ModelRef | None, model_sha256: str, store: ObjectStore) -> None:
        node = ray.util.get_node_ip_address()
        if model is not None:
            try:
                spec = dataclasses.replace(spec, model_path=str(model.install(store, ray.get)))
            except ArcFaceTrtError as exc:
                raise type(exc)(f"Ray node {node} cannot read the model: {exc}") from None
        self.embedder = create_embedder(spec)
        found = self.embedder.model
        if found.sha256 != model_sha256:
            raise InputError(
                f"the model {found.path} differs on Ray node {node} "
                f"(sha256 {found.sha256[:12]}... instead of {model_sha256[:12]}...)"
            )
        info = self.embedder.info()
        self.backend, self.precision = info.backend, info.precision

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Embed the rows that decoded; the others keep a zero embedding and their error."""
        n = len(batch["path"])
        ok = np.array([not e for e in batch["error"]], dtype=bool)
        embeddings = np.zeros((n, self.embedder.model.embedding_dim), dtype=np.float32)
        if ok.any():
            embeddings[ok] = l2_normalize(self.embedder.forward(np.ascontiguousarray(batch["input"][ok])))
        return {
            "path": batch["path"],
            "embedding": embeddings,
            "error": batch["error"],
            "backend": np.array([self.backend] * n, dtype=object),
            "precision": np.array([self.precision] * n, dtype=object),
        }


def spec_for_workers(spec: BackendSpec, store: ObjectStore, threads: int) -> BackendSpec:
    """The spec the actors get: ``threads`` session threads, and the S3 endpoint and region the driver resolved.

    A worker reads no config file and may lack the driver's ``AWS_ENDPOINT_URL``: with the
    endpoint written into the spec, a TensorRT backend there fetches engines from the same store.
    """
    section = dataclasses.replace(
        spec.tensorrt.tensorrt,
        engine_s3_endpoint_url=store.endpoint.endpoint_url,
        engine_s3_region=store.endpoint.region,
    )
    return dataclasses.replace(spec, threads=threads, tensorrt=dataclasses.replace(spec.tensorrt, tensorrt=section))


def _files_of(keys: list[str], store: ObjectStore) -> tuple[Any, list[str], str]:
    """(filesystem or None for local, paths as that filesystem names them, the prefix that makes them keys)."""
    if not any(is_uri(k) for k in keys):
        return None, keys, ""
    remotes = [store.resolve(k) for k in keys] if all(is_uri(k) for k in keys) else []
    if not remotes or any(r.prefix != remotes[0].prefix or r.fs is not remotes[0].fs for r in remotes):
        raise InputError(
            "a Ray run reads its images with one file system: give local paths only, or URIs of one store "
            "(this list mixes them)"
        )
    return remotes[0].fs, [r.path for r in remotes], remotes[0].prefix


class RayEmbedJob:
    """The model resolved on the driver (its hash, how workers get it), the actor pool, and the Ray run itself."""

    def __init__(
        self,
        spec: BackendSpec,
        batch_size: int | None,
        store: ObjectStore,
        address: str | None = None,
        num_cpus: int | None = None,
        actors: tuple[int, int] | None = None,
        threads_per_actor: int | None = None,
    ) -> None:
        ray_data.DataContext  # noqa: B018 - a missing Ray Data is its install hint now, before any work
        self.spec = spec
        self.store = store
        self.batch_size = batch_size or spec.batch_size
        self.address = address
        self.num_cpus = num_cpus
        self.actors = actors
        self.threads_per_actor = threads_per_actor
        if spec.model_path is not None and is_uri(spec.model_path):
            # Every node reads the URI itself; the driver reads it once for the hash and the input size.
            self.model = inspect_remote_model(spec.model_path, store, spec.inputs)
        else:
            # A local file (shipped through Ray's object store), or the built-in model (regenerated on each worker).
            self.model = inspect_model(spec.model_file(), spec.inputs)
        self.model.report_input_spec()
        #: How Ray was reached, and the actor pool (known once the run has started).
        self.connection: Connection | None = None
        self.plan: ActorPlan | None = None

    def _model_ref(self) -> ModelRef | None:
        """How workers get the model: by URI, as bytes in Ray's object store, or (built-in) not at all."""
        model: ModelInfo = self.model
        if self.spec.model_path is None:
            return None
        if is_uri(self.spec.model_path):
            return ModelRef(basename(self.spec.model_path), model.sha256, uri=self.spec.model_path)
        return ModelRef.of_local(model, ray.put)

    def _blocks(self, rows: int) -> int:
        """Blocks of the dataset: one per batch, at most 1000 (Ray Data's overhead grows with the count)."""
        return max(1, min(math.ceil(rows / self.batch_size), 1000))

    def _preprocessing(self) -> dict[str, Any]:
        """The model's preprocessing arguments (its input spec), for the decode tasks."""
        return {"spec": self.model.input_spec}

    def _images(self, source: Source, todo: list[str], options: dict[str, Any]) -> Any | None:
        fs, paths, prefix = _files_of(todo, source.store)
        try:
            files = ray_data.read_binary_files(
                paths,
                include_paths=True,
                filesystem=fs,
                ignore_missing_paths=True,  # a missing file is reported by the driver, as in a single-process run
                override_num_blocks=self._blocks(len(todo)),
                num_cpus=_TASK_CPUS,
                **options,
            )
        except ValueError as exc:
            if "No files found" not in str(exc):
                raise
            return None  # not one of the paths is there: the driver reports each as not found
        return files.map_batches(
            decode_images,
            batch_size=self.batch_size,
            batch_format="numpy",
            fn_kwargs={"prefix": prefix, **self._preprocessing()},
            num_cpus=_TASK_CPUS,
            **options,
        )

    def _npy(self, layout: NpyLayout, store: ObjectStore, todo: list[str], options: dict[str, Any]) -> Any:
        offset = len(layout.location) + 1
        rows = [{"row": int(key[offset:])} for key in todo]
        blocks = self._blocks(len(todo))
        return ray_data.from_items(rows, override_num_blocks=blocks).map_batches(
            read_npy_rows,
            batch_size=self.batch_size,
            batch_format="numpy",
            fn_kwargs={"layout": layout, "store": store, **self._preprocessing()},
            num_cpus=_TASK_CPUS,
            **options,
        )

    def run(self, source: Source, todo: list[str]) -> Iterator[EmbeddedBatch]:
        """Yield embedded batches of ``todo`` as the Ray pipeline produces them, in input order."""
        with connected(self.address, self.num_cpus) as connection:
            self.connection = connection
            self.plan = plan_actors(cluster_nodes(), self.spec.device, self.actors, self.threads_per_actor)
            context = ray_data.DataContext.get_current()
            saved = (context.execution_options.preserve_order, context.enable_progress_bars)
            # Same row order as the input, and our own progress bar instead of Ray's.
            context.execution_options.preserve_order = True
            context.enable_progress_bars = False
            quieter = {"ray.data": logging.WARNING, "ray.data._internal.progress": logging.ERROR}
            levels = {name: logging.getLogger(name).level for name in quieter}
            for name, level in quieter.items():  # Ray Data's per-run lines; ours are the progress bar and summary
                logging.getLogger(name).setLevel(level)
            try:
                batches = self._run(source, todo, self.plan, connection.env_applied)
                yield from _in_order(batches, todo, self.model.embedding_dim)
            except Exception as exc:  # Ray wraps what failed on a worker in its own error types
                failure = ray_failure(exc, local_inputs=bool(todo) and not is_uri(todo[0]))
                if failure is None:
                    raise
                raise failure from (exc if failure.exit_code == 1 else None)
            finally:
                context.execution_options.preserve_order, context.enable_progress_bars = saved
                for name, level in levels.items():
                    logging.getLogger(name).setLevel(level)

    def _run(
        self, source: Source, todo: list[str], plan: ActorPlan, env_applied: bool
    ) -> Iterator[dict[str, np.ndarray]]:
        env = {} if env_applied else worker_env()
        options: dict[str, Any] = {"runtime_env": {"env_vars": env}} if env else {}
        if source.npy is not None:
            data = self._npy(source.npy, source.store, todo, options)
        else:
            data = self._images(source, todo, options)
        if data is None:
            return
        spec = spec_for_workers(self.spec, self.store, plan.threads)
        with warnings.catch_warnings():
            # max_restarts has no named parameter in Ray 2.60 (the keyword form warns); it bounds a crash loop.
            warnings.simplefilter("ignore", DeprecationWarning)
            embedded = data.map_batches(
                EmbedActor,
                batch_size=self.batch_size,
                batch_format="numpy",
                fn_constructor_kwargs={
                    "spec": spec,
                    "model": self._model_ref(),
                    "model_sha256": self.model.sha256,
                    "store": self.store,
                },
                **plan.map_options(),
                **options,
            )
        yield from embedded.iter_batches(batch_size=self.batch_size, batch_format="numpy")


def _in_order(batches: Iterator[dict[str, np.ndarray]], todo: list[str], dim: int) -> Iterator[EmbeddedBatch]:
    """Driver side: Ray's rows as EmbeddedBatches, each key of ``todo`` accounted for exactly once.

    Rows come in input order, less the files Ray's reader did not find: the keys skipped over
    are reported as not found. A row for a key already passed or not asked for (a folder named
    in a list expands to its files) is dropped, so nothing is committed twice.
    """
    position = {key: i for i, key in enumerate(todo)}
    cursor = 0
    for batch in batches:
        keep: list[int] = []
        missing: list[tuple[str, str]] = []
        for i, key in enumerate(str(k) for k in batch["path"]):
            at = position.get(key, -1)
            if at < cursor:
                continue
            missing.extend((k, NOT_FOUND) for k in todo[cursor:at])
            cursor = at + 1
            keep.append(i)
        yield from _split({name: column[keep] for name, column in batch.items()}, missing)
    if cursor < len(todo):
        yield EmbeddedBatch([], np.zeros((0, dim), np.float32), [(k, NOT_FOUND) for k in todo[cursor:]], "", "")


def _split(batch: dict[str, np.ndarray], missing: list[tuple[str, str]]) -> Iterator[EmbeddedBatch]:
    """One EmbeddedBatch per (backend, precision) found in a Ray batch; ``missing`` joins the first's failures."""
    errors = [str(e) for e in batch["error"]]
    keys = [str(k) for k in batch["path"]]
    failures = missing + [(k, e) for k, e in zip(keys, errors, strict=True) if e]
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (backend, precision) in enumerate(zip(batch["backend"], batch["precision"], strict=True)):
        if not errors[i]:
            groups.setdefault((str(backend), str(precision)), []).append(i)
    if not groups:
        yield EmbeddedBatch([], np.zeros((0, batch["embedding"].shape[1]), np.float32), failures, "", "")
        return
    for n, ((backend, precision), rows) in enumerate(groups.items()):
        yield EmbeddedBatch(
            [keys[i] for i in rows],
            np.asarray(batch["embedding"][rows], dtype=np.float32),
            failures if n == 0 else [],
            backend,
            precision,
        )
