"""``arcface-trt embed --ray``: the same job on Ray Data, on a local instance or an existing cluster.

Pipeline: the keys still to do -> ``map_batches(decode_and_preprocess)`` (stateless tasks,
read and preprocessed in parallel with the project's decoder and ``preprocess``) ->
``map_batches(EmbedActor)`` (an actor pool: one actor per GPU, or one per CPU slot but one
when the cluster has no GPU; each actor holds one embedder and runs ``forward`` +
``l2_normalize``) -> back to the driver, which commits parts exactly like the single-process
run (same schema, same resume rules). Ray is imported only here, with an install hint.

On a multi-node cluster the image paths and the model path must be readable on every node
(a shared file system), and arcface-trt must be installed on the nodes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from arcface_trt.backends import create_embedder
from arcface_trt.backends.spec import BackendSpec
from arcface_trt.embed.batch import EmbeddedBatch
from arcface_trt.embed.reader import read_batch
from arcface_trt.embed.sources import Source, load_image_file
from arcface_trt.errors import ArcFaceTrtError, InputError
from arcface_trt.lazy import lazy_import
from arcface_trt.model.input_spec import InputSpec
from arcface_trt.model.inspect import inspect_model
from arcface_trt.preprocess import l2_normalize, preprocess

ray = lazy_import("ray")
ray_data = lazy_import("ray.data")  # Ray Data ships as the ray[data] extra


def decode_and_preprocess(batch: dict[str, np.ndarray], spec: InputSpec) -> dict[str, np.ndarray]:
    """Ray task: decode (or take the ``crop`` column of) a batch and preprocess it; failures keep a row."""
    keys = [str(k) for k in batch["path"]]
    if "crop" in batch:
        crops = dict(zip(keys, batch["crop"], strict=True))
        load: Any = crops.__getitem__
    else:
        load = load_image_file
    done = read_batch(keys, load, functools.partial(preprocess, spec=spec))
    failed = np.zeros((len(done.failures), 3, spec.side, spec.side), dtype=np.float32)
    inputs = failed if done.inputs is None else np.concatenate([done.inputs, failed], axis=0)
    return {
        "path": np.array(done.keys + [k for k, _ in done.failures], dtype=object),
        "input": inputs,
        "error": np.array([""] * len(done.keys) + [r for _, r in done.failures], dtype=object),
    }


class EmbedActor:
    """Ray actor: one embedder per actor, made once, checked to run the model the driver hashed."""

    def __init__(self, spec: BackendSpec, model_sha256: str) -> None:
        self.embedder = create_embedder(spec)
        model = self.embedder.model
        if model.sha256 != model_sha256:
            raise InputError(
                f"the model at {model.path} differs on this Ray node (sha256 {model.sha256[:12]}... "
                f"instead of {model_sha256[:12]}...)"
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


def _user_error(exc: BaseException) -> ArcFaceTrtError | None:
    """The project's own error inside a Ray task/actor error, if that is what it wraps."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ArcFaceTrtError):
            return current
        current = getattr(current, "cause", None) or current.__cause__
    return None


class RayEmbedJob:
    """The backend spec resolved on the driver (with the model's hash), and the Ray run itself."""

    def __init__(self, spec: BackendSpec, batch_size: int | None, address: str | None, num_cpus: int | None) -> None:
        ray_data.DataContext  # noqa: B018 - a missing Ray Data is its install hint now, before any work
        if spec.model_path is not None:
            # Workers need not share the driver's working folder: hand them an absolute model path.
            spec = dataclasses.replace(spec, model_path=os.path.abspath(spec.model_path))
        self.spec = spec
        self.batch_size = batch_size or spec.batch_size
        self.model = inspect_model(spec.model_file(), spec.inputs)
        self.model.report_input_spec()
        self.address = address
        self.num_cpus = num_cpus

    @contextlib.contextmanager
    def _connected(self) -> Iterator[None]:
        """Use a running Ray, else connect to ``address``, else start a local instance (stopped after)."""
        if ray.is_initialized():
            yield
            return
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
        if self.address:
            kwargs["address"] = self.address
        elif self.num_cpus:
            kwargs["num_cpus"] = self.num_cpus
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise InputError(f"cannot connect to the Ray cluster at {self.address}: {exc}") from None
        try:
            yield
        finally:
            ray.shutdown()

    def _actor_options(self) -> dict[str, Any]:
        """One actor per GPU when the cluster has GPUs (and the device allows), else one per CPU slot but one."""
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        if gpus > 0 and self.spec.device != "cpu":
            return {"compute": ray_data.ActorPoolStrategy(size=gpus), "num_gpus": 1}
        cpus = max(1, int(resources.get("CPU", 1)))
        # Keep one CPU slot free for the decode tasks, or the pipeline stalls on a small machine.
        return {"compute": ray_data.ActorPoolStrategy(size=max(1, cpus - 1)), "num_cpus": 1}

    def _dataset(self, source: Source, todo: list[str]) -> Any:
        blocks = max(1, min(math.ceil(len(todo) / self.batch_size), 1000))
        if source.kind == "npy":
            # The crops are in the driver's memory already; ship them with their keys.
            rows: list[dict[str, Any]] = [{"path": key, "crop": source.load(key)} for key in todo]
        else:
            rows = [{"path": key} for key in todo]
        return ray_data.from_items(rows, override_num_blocks=blocks)

    def run(self, source: Source, todo: list[str]) -> Iterator[EmbeddedBatch]:
        """Yield embedded batches of ``todo`` as the Ray pipeline produces them."""
        with self._connected():
            context = ray_data.DataContext.get_current()
            saved = (context.execution_options.preserve_order, context.enable_progress_bars)
            # Same row order as the input, and our own progress bar instead of Ray's.
            context.execution_options.preserve_order = True
            context.enable_progress_bars = False
            data_log = logging.getLogger("ray.data")
            level = data_log.level
            data_log.setLevel(logging.WARNING)  # Ray Data's per-run INFO lines; ours is the summary
            try:
                yield from self._run(source, todo)
            finally:
                context.execution_options.preserve_order, context.enable_progress_bars = saved
                data_log.setLevel(level)

    def _run(self, source: Source, todo: list[str]) -> Iterator[EmbeddedBatch]:
        model = self.model
        dataset = self._dataset(source, todo).map_batches(
            decode_and_preprocess,
            batch_size=self.batch_size,
            batch_format="numpy",
            fn_kwargs={"spec": model.input_spec},
            # Other resources than the actors': Ray then keeps decoding in its own tasks (fusing it
            # into the actors would make the backend wait on disk); two decode tasks per CPU.
            num_cpus=0.5,
        )
        dataset = dataset.map_batches(
            EmbedActor,
            batch_size=self.batch_size,
            batch_format="numpy",
            fn_constructor_kwargs={"spec": self.spec, "model_sha256": model.sha256},
            **self._actor_options(),
        )
        try:
            for batch in dataset.iter_batches(batch_size=self.batch_size, batch_format="numpy"):
                yield from _split(batch)
        except Exception as exc:  # Ray wraps errors raised in tasks and actors
            user = _user_error(exc)
            if user is not None:
                raise user from None
            raise


def _split(batch: dict[str, np.ndarray]) -> Iterator[EmbeddedBatch]:
    """Driver side: one EmbeddedBatch per (backend, precision) found in a Ray batch."""
    errors = [str(e) for e in batch["error"]]
    keys = [str(k) for k in batch["path"]]
    failures = [(k, e) for k, e in zip(keys, errors, strict=True) if e]
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
