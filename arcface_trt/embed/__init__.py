"""Bulk embeddings: a folder, list file or ``.npy`` of face crops -> Parquet (or ``.npy`` + index).

``embed_to_file`` is what ``arcface-trt embed`` runs (resumable, optionally on Ray);
``embed_paths`` embeds image files in memory; ``read_embeddings`` reads a finished output.
See docs/embed.md for the on-disk format and the resume rules.
"""

from __future__ import annotations

from arcface_trt.embed.batch import EmbeddedBatch
from arcface_trt.embed.job import (
    DEFAULT_CHUNK_SIZE,
    EmbeddedPaths,
    EmbedSummary,
    embed_paths,
    embed_to_file,
)
from arcface_trt.embed.parts import read_embeddings
from arcface_trt.embed.pipeline import StageRates, iter_embeddings
from arcface_trt.embed.sources import Source, open_source

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "EmbedSummary",
    "EmbeddedBatch",
    "EmbeddedPaths",
    "Source",
    "StageRates",
    "embed_paths",
    "embed_to_file",
    "iter_embeddings",
    "open_source",
    "read_embeddings",
]
