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
import functools
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from arcface_trt.embed.job import EmbeddedBatch
from arcface_trt.embed.reader import read_batch
from arcface_trt.embed.sources import Source
from arcface_trt.errors import ArcFaceTrtError, BackendUnavailableError, InputError

INSTALL_HINT = "pip install 'arcface-trt[ray]' (or: pip install 'ray[data]')"


def require_ray() -> Any:
    """Import ``ray`` with Ray Data, or raise BackendUnavailableError with the install hint."""
    try:
        import ray
        import ray.data  # Ray Data ships as the ray[data] extra
    except ImportError as exc:
        raise BackendUnavailableError(
            f"--ray needs Ray Data, which is not importable ({exc}): {INSTALL_HINT}"
        ) from None
    return ray


def decode_and_preprocess(
    batch: dict[str, np.ndarray], input_size: tuple[int, int], mean: float, std: float
) -> dict[str, np.ndarray]:
    """Ray task: decode (or take the ``crop`` column of) a batch and preprocess it; failures keep a row."""
    from arcface_trt.embed.sources import load_image_file
    from arcface_trt.preprocess import preprocess

    keys = [str(k) for k in batch["path"]]
    if "crop" in batch:
        crops = dict(zip(keys, batch["crop"], strict=True))
        load: Any = crops.__getitem__
    else:
        load = load_image_file
    done = read_batch(keys, load, functools.partial(preprocess, input_size=input_size, mean=mean, std=std))
    width, height = input_size
    failed = np.zeros((len(done.failures), 3, height, width), dtype=np.float32)
    inputs = failed if done.inputs is None else np.concatenate([done.inputs, failed], axis=0)
    return {
        "path": np.array(done.keys + [k for k, _ in done.failures], dtype=object),
        "input": inputs,
        "error": np.array([""] * len(done.keys) + [r for _, r in done.failures], dtype=object),
    }


class EmbedActor:
    """Ray actor: one embedder per actor, made once, checked to run the model the driver hashed."""

    def __init__(
        self,
        backend: str,
        model_path: str,
        model_sha256: str,
        device: str,
        batch_size: int,
        allow_cpu_fallback: bool,
        config: Any,
    ) -> None:
        from arcface_trt.backends import get_embedding_backend

        self.embedder = get_embedding_backend(
            backend, device, None, allow_cpu_fallback, model_path, config=config, batch_size=batch_size
        )
        if self.embedder.model.sha256 != model_sha256:
            raise InputError(
                f"the model at {model_path} differs on this Ray node (sha256 {self.embedder.model.sha256[:12]}... "
                f"instead of {model_sha256[:12]}...)"
            )
        info = self.embedder.info()
        self.backend, self.precision = info.backend, info.precision

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Embed the rows that decoded; the others keep a zero embedding and their error."""
        from arcface_trt.preprocess import l2_normalize

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
    """Settings resolved on the driver (config, backend, model hash) and the Ray run itself."""

    def __init__(
        self,
        backend: str | None,
        onnx_path: str | Path | None,
        device: str | None,
        batch_size: int | None,
        allow_cpu_fallback: bool | None,
        config: Any,
        address: str | None,
        num_cpus: int | None,
    ) -> None:
        from arcface_trt.backends import canonical_backend
        from arcface_trt.config import EmbeddingConfig, load_config
        from arcface_trt.model.default import resolve_model_path
        from arcface_trt.model.inspect import inspect_model

        self.ray = require_ray()
        self.config = config if isinstance(config, EmbeddingConfig) else load_config(config)
        emb = self.config.embedding
        self.requested_backend = canonical_backend(backend or emb.backend)
        self.device = device or emb.device
        self.batch_size = batch_size or emb.batch_size
        self.allow_cpu_fallback = emb.allow_cpu_fallback if allow_cpu_fallback is None else allow_cpu_fallback
        self.model = inspect_model(resolve_model_path(onnx_path, emb))
        self.address = address
        self.num_cpus = num_cpus

    @contextlib.contextmanager
    def _connected(self) -> Iterator[None]:
        """Use a running Ray, else connect to ``address``, else start a local instance (stopped after)."""
        ray = self.ray
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
        from ray.data import ActorPoolStrategy

        resources = self.ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        if gpus > 0 and self.device != "cpu":
            return {"compute": ActorPoolStrategy(size=gpus), "num_gpus": 1}
        cpus = max(1, int(resources.get("CPU", 1)))
        # Keep one CPU slot free for the decode tasks, or the pipeline stalls on a small machine.
        return {"compute": ActorPoolStrategy(size=max(1, cpus - 1)), "num_cpus": 1}

    def _dataset(self, source: Source, todo: list[str]) -> Any:
        data = self.ray.data
        blocks = max(1, min(math.ceil(len(todo) / self.batch_size), 1000))
        if source.kind == "npy":
            # The crops are in the driver's memory already; ship them with their keys.
            rows: list[dict[str, Any]] = [{"path": key, "crop": source.load(key)} for key in todo]
        else:
            rows = [{"path": key} for key in todo]
        return data.from_items(rows, override_num_blocks=blocks)

    def run(self, source: Source, todo: list[str]) -> Iterator[EmbeddedBatch]:
        """Yield embedded batches of ``todo`` as the Ray pipeline produces them."""
        with self._connected():
            context = self.ray.data.DataContext.get_current()
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
            fn_kwargs={"input_size": model.input_size, "mean": model.input_mean, "std": model.input_std},
            # Other resources than the actors': Ray then keeps decoding in its own tasks (fusing it
            # into the actors would make the backend wait on disk); two decode tasks per CPU.
            num_cpus=0.5,
        )
        dataset = dataset.map_batches(
            EmbedActor,
            batch_size=self.batch_size,
            batch_format="numpy",
            fn_constructor_kwargs={
                "backend": self.requested_backend,
                "model_path": os.path.abspath(model.path),  # workers need not share the driver's folder
                "model_sha256": model.sha256,
                "device": self.device,
                "batch_size": self.batch_size,
                "allow_cpu_fallback": self.allow_cpu_fallback,
                "config": self.config,
            },
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
