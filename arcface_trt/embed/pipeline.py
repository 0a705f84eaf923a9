"""The single-process embedding pipeline, and each of its stages measured alone in the same run.

:func:`iter_embeddings` overlaps the stages: reader threads decode and preprocess batches ahead
while the calling thread runs ``forward`` and L2-normalises. Its results equal ``encode`` on the
same crops: the same ``preprocess``, the same ``forward`` on batches of ``batch_size``, the same
``l2_normalize``.

:class:`MeasuredRun` runs most of a run through :func:`iter_embeddings` (its images/s from its
second batch on is ``embed_img_s``), then takes the last batches through the stages one after the
other, each with nothing else running: decode + preprocess on the reader threads
(``decode_only_img_s``), then ``encode`` of the decoded crops (``encode_only_img_s``). Those
embeddings are the run's own, so measuring costs only the overlap lost on a few batches. A pipeline
that keeps up runs close to its slower stage alone, the ``bound_stage``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from arcface_trt.backends.base import Embedder
from arcface_trt.embed.batch import EmbeddedBatch
from arcface_trt.embed.reader import default_threads, read_batches
from arcface_trt.preprocess import l2_normalize
from arcface_trt.records import Record

#: Batches measured stage by stage at the start of a run (at most a quarter of the run's batches) ...
PROBE_BATCHES = 8
#: ... and at most this many images (their decoded crops are held until encoded), unless that is under 2 batches.
PROBE_IMAGES = 1024


def reader_threads(embedder: Embedder, threads: int | None) -> int:
    """The reader threads a run uses: ``threads``, else sized to the machine for this embedder's device."""
    return threads or default_threads(on_gpu=embedder.on_gpu)


def iter_embeddings(
    embedder: Embedder,
    keys: Sequence[str],
    load: Callable[[str], Any],
    batch_size: int | None = None,
    threads: int | None = None,
) -> Iterator[EmbeddedBatch]:
    """Embed ``keys`` in order; reading and preprocessing run ahead on reader threads, overlapping ``forward``."""
    embedder.ensure_ready()
    info = embedder.info()
    size = batch_size or embedder.batch_size
    for batch in read_batches(keys, load, embedder.preprocess, size, reader_threads(embedder, threads)):
        embeddings = _no_rows(embedder) if batch.inputs is None else l2_normalize(embedder.forward(batch.inputs))
        yield EmbeddedBatch(batch.keys, embeddings, batch.failures, info.backend, info.precision)


@dataclass
class StageRates(Record):
    """Images/s of each stage alone and of the overlapped pipeline, measured in one run on its own images.

    ``embed_img_s``: the overlapped pipeline on the first ``pipelined_images``, from its second batch
    on (committing parts included, the final merge not). ``decode_only_img_s``: reading, decoding and
    preprocessing the last ``probe_images`` on the ``reader_threads`` threads, nothing else running.
    ``encode_only_img_s``: ``encode`` (preprocess, ``forward``, L2 normalisation) of those decoded
    crops batch by batch, nothing else running. ``bound_stage``:
    the slower stage alone (``decode`` or ``encode``); ``embed_vs_bound``: ``embed_img_s`` over that
    stage's images/s. Images are counted as read (unreadable ones too) and as encoded.
    """

    probe_images: int
    pipelined_images: int
    reader_threads: int
    decode_only_img_s: float
    encode_only_img_s: float
    embed_img_s: float
    bound_stage: str
    embed_vs_bound: float


def probe_batches(images: int, batch_size: int) -> int:
    """How many of a run's first batches are measured stage by stage: a quarter, 2 to 8, at most 1,024 images.

    0 when the run has fewer than 8 batches (too few to measure the stages and a pipelined part).
    """
    batches = -(-images // batch_size)
    if batches < 8:
        return 0
    return max(2, min(PROBE_BATCHES, batches // 4, PROBE_IMAGES // batch_size))


def _rate(images: int, seconds: float) -> float:
    return images / seconds if seconds > 0 else 0.0


class MeasuredRun:
    """Iterate it for the :class:`EmbeddedBatch` es of ``keys`` in order; then ``rates`` holds the stage figures.

    The run's last batches are the measured ones: the overlapped part runs first and warms the
    backend up, so ``encode`` alone is timed warm. The first overlapped batch is not timed (the
    pipeline's fill). ``rates`` stays None when the run is too short to measure
    (:func:`probe_batches` is 0) or is not iterated to its end.
    """

    def __init__(
        self,
        embedder: Embedder,
        keys: Sequence[str],
        load: Callable[[str], Any],
        batch_size: int | None = None,
        threads: int | None = None,
    ) -> None:
        self.embedder = embedder
        self.keys = keys
        self.load = load
        self.batch_size = batch_size or embedder.batch_size
        self.threads = reader_threads(embedder, threads)
        self.rates: StageRates | None = None

    def __iter__(self) -> Iterator[EmbeddedBatch]:
        embedder, size = self.embedder, self.batch_size
        embedder.ensure_ready()
        probed = probe_batches(len(self.keys), size) * size
        if probed == 0:
            yield from iter_embeddings(embedder, self.keys, self.load, size, self.threads)
            return
        # The stages are measured alone on the last batches, once the overlapped part has warmed the backend
        # up (its first batches run slower), and the batches still come out in input order.
        pipelined, measured = self.keys[:-probed], self.keys[-probed:]
        first: float | None = None
        after_first = 0
        for batch in iter_embeddings(embedder, pipelined, self.load, size, self.threads):
            if first is None:
                first = time.perf_counter()
            else:
                after_first += len(batch.keys) + len(batch.failures)
            yield batch
        # From the first overlapped batch's arrival to the consumer's return for more: the clock covers
        # what the consumer does with each later batch (committing parts included).
        embed = _rate(after_first, time.perf_counter() - first if first is not None else 0.0)
        info = embedder.info()
        started = time.perf_counter()
        # Decoded and preprocessed as in the pipeline; the crops are kept for encode, the inputs let go at once.
        reading = read_batches(measured, self.load, embedder.preprocess, size, self.threads)
        read = [dataclasses.replace(batch, inputs=None) for batch in reading]
        decode = _rate(probed, time.perf_counter() - started)
        encoded, encode_s = 0, 0.0
        for batch in read:
            started = time.perf_counter()
            embeddings = embedder.encode(batch.crops) if batch.crops else _no_rows(embedder)
            encode_s += time.perf_counter() - started
            encoded += len(batch.crops)
            yield EmbeddedBatch(batch.keys, embeddings, batch.failures, info.backend, info.precision)
        encode = _rate(encoded, encode_s)
        bound = min(decode, encode)
        self.rates = StageRates(
            probe_images=probed,
            pipelined_images=len(pipelined),
            reader_threads=self.threads,
            decode_only_img_s=decode,
            encode_only_img_s=encode,
            embed_img_s=embed,
            bound_stage="decode" if decode < encode else "encode",
            embed_vs_bound=embed / bound if bound > 0 else 0.0,
        )


def _no_rows(embedder: Embedder) -> np.ndarray:
    return np.zeros((0, embedder.model.embedding_dim), dtype=np.float32)
