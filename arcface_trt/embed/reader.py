"""Read, decode and preprocess batches in background threads while the backend runs.

A thread pool (sized to the machine: :func:`default_threads`) works ahead of the consumer on at
most ``prefetch`` batches (a bounded queue of futures, so memory stays flat however large the
input); batches come out in input order. OpenCV's decoder and ``blobFromImages`` release the GIL,
so the threads really overlap with each other and with the backend's ``forward``.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from arcface_trt.embed.sources import Unreadable
from arcface_trt.errors import InputError

Loader = Callable[[str], "np.ndarray | Unreadable"]
Preprocessor = Callable[[list[np.ndarray]], np.ndarray]


@dataclass
class ReadBatch:
    """One batch ready for ``forward``: the keys that decoded, their NCHW inputs, and the failures.

    ``crops`` are the decoded BGR crops the inputs were made from (``crops[i]`` is ``keys[i]``'s).
    """

    keys: list[str]
    inputs: np.ndarray | None
    failures: list[tuple[str, str]] = field(default_factory=list)
    crops: list[np.ndarray] = field(default_factory=list)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: a container's share, ``taskset``), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def default_threads(on_gpu: bool = False, cpus: int | None = None) -> int:
    """Reader threads when not given, sized to the machine (``cpus``: default :func:`usable_cpus`).

    With a GPU backend the CPU only decodes and feeds the GPU: every CPU but the one that runs
    ``forward`` and commits (1 to 16; a fast engine outruns a few decoding threads). With a CPU
    backend decoding shares the cores with inference: half the CPUs, 1 to 4 (a crop decodes in a
    fraction of a millisecond against milliseconds of CPU inference; the threads only run while
    the bounded queue has room, so more would only compete with the backend's threads).
    """
    cpus = cpus or usable_cpus()
    if on_gpu:
        return max(1, min(16, cpus - 1))
    return max(1, min(4, cpus // 2))


def _load_one(load: Loader, key: str) -> np.ndarray | Unreadable:
    try:
        return load(key)
    except Exception as exc:  # one bad file must never stop a bulk run; it is reported instead
        return Unreadable(f"{type(exc).__name__}: {exc}")


def read_batch(keys: Sequence[str], load: Loader, preprocess: Preprocessor) -> ReadBatch:
    """Decode and preprocess one batch; unreadable items become failures, never exceptions."""
    ok_keys: list[str] = []
    crops: list[np.ndarray] = []
    failures: list[tuple[str, str]] = []
    for key in keys:
        item = _load_one(load, key)
        if isinstance(item, Unreadable):
            failures.append((key, item.reason))
        else:
            ok_keys.append(key)
            crops.append(item)
    if not crops:
        return ReadBatch([], None, failures)
    try:
        return ReadBatch(ok_keys, preprocess(crops), failures, crops)
    except InputError:
        pass
    # Rare: one crop the preprocessor rejects; find it without losing the rest of the batch.
    good_keys, good = [], []
    for key, crop in zip(ok_keys, crops, strict=True):
        try:
            preprocess([crop])
        except InputError as exc:
            failures.append((key, str(exc)))
            continue
        good_keys.append(key)
        good.append(crop)
    return ReadBatch(good_keys, preprocess(good) if good else None, failures, good)


def read_batches(
    keys: Sequence[str],
    load: Loader,
    preprocess: Preprocessor,
    batch_size: int,
    threads: int | None = None,
    prefetch: int | None = None,
) -> Iterator[ReadBatch]:
    """Yield :class:`ReadBatch` es of ``batch_size`` keys in order, read ahead by ``threads`` threads."""
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    workers = threads or default_threads()
    if workers < 1:
        raise InputError(f"reader threads must be at least 1, got {workers}")
    ahead = prefetch or 2 * workers + 1
    starts = iter(range(0, len(keys), batch_size))
    pending: collections.deque[Future[ReadBatch]] = collections.deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="arcface-trt-read")

    def submit_next() -> None:
        start = next(starts, None)
        if start is not None:
            pending.append(pool.submit(read_batch, keys[start : start + batch_size], load, preprocess))

    try:
        for _ in range(ahead):
            submit_next()
        while pending:
            batch = pending.popleft().result()
            submit_next()
            yield batch
    finally:
        # Interrupted or finished: drop what is queued, do not wait for it.
        pool.shutdown(wait=False, cancel_futures=True)
