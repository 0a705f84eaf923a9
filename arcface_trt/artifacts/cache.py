"""The one local cache of built engines: TensorRT plans and CPU engines, each with its manifest.

Layout under one root (:func:`arcface_trt.paths.engine_cache_root`)::

    {root}/trt{major}.{minor}/{name}.plan + {name}.json     TensorRT plans
    {root}/cpu/{name}.onnx + {name}.json                     ONNX Runtime CPU engines
    {root}/search/{name}.json                                drift-budget search records (sensitivities)

A cached engine is used only when its manifest agrees with the request and the file's
sha256 equals the manifest's; otherwise :meth:`ArtifactCache.lookup` says why. Writes are
atomic (engine first, manifest last: a manifest means a complete engine), and builds or
fetches of one key hold that key's file lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arcface_trt.artifacts.key import EngineKey
from arcface_trt.artifacts.manifest import MANIFEST_TYPES, ManifestRecord
from arcface_trt.errors import InputError
from arcface_trt.fileio import (
    read_regular_file,
    remove_stale_temporaries,
    sha256_file,
    write_bytes_atomic,
    write_text_atomic,
)
from arcface_trt.filelock import file_lock

#: How messages name each kind of engine.
_NOUNS = {"gpu": "plan", "cpu": "CPU engine"}


@dataclass(frozen=True)
class CacheLookup:
    """Result of looking a key up: the engine and manifest when usable, else why not."""

    path: Path
    manifest_path: Path
    manifest: Any
    reasons: tuple[str, ...]

    @property
    def hit(self) -> bool:
        """True when the cached engine can be used as it is."""
        return self.manifest is not None and not self.reasons


class ArtifactCache:
    """The local folder of engines and manifests."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def path(self, key: EngineKey) -> Path:
        """Where the engine of ``key`` lives."""
        return self.root / key.relpath

    def manifest_path(self, key: EngineKey) -> Path:
        """Where the manifest of ``key`` lives."""
        return self.root / key.manifest_relpath

    def lookup(self, key: EngineKey, expected: dict[str, Any], verify_sha: bool = True) -> CacheLookup:
        """Check the cached engine of ``key`` against the ``expected`` manifest values."""
        path, manifest_path = self.path(key), self.manifest_path(key)
        noun = _NOUNS[key.target]
        if not path.exists():
            return CacheLookup(path, manifest_path, None, (f"no cached {noun}",))
        if not manifest_path.exists():
            return CacheLookup(path, manifest_path, None, (f"cached {noun} has no manifest",))
        try:
            manifest = MANIFEST_TYPES[key.target].read(manifest_path)
        except InputError as exc:
            return CacheLookup(path, manifest_path, None, (str(exc),))
        reasons = manifest.differences(expected)
        if verify_sha and not reasons and sha256_file(path) != manifest.artifact_sha256:
            reasons.append(f"cached {noun}'s sha256 does not match its manifest (corrupt or replaced)")
        return CacheLookup(path, manifest_path, manifest, tuple(reasons))

    def store(self, key: EngineKey, data: bytes, manifest: ManifestRecord) -> Path:
        """Write the engine, then the manifest, atomically; returns the engine's path."""
        path = self.path(key)
        write_bytes_atomic(path, data)
        write_text_atomic(self.manifest_path(key), manifest.to_json())
        return path

    def record_path(self, folder: str, name: str) -> Path:
        """Where a record that is not an engine (a search's sensitivities) lives: ``{root}/{folder}/{name}``."""
        return self.root / folder / name

    def read_record(self, path: Path, max_bytes: int) -> bytes:
        """A record's bytes (a regular file of at most ``max_bytes``); InputError otherwise."""
        return read_regular_file(path, max_bytes, "cached record")

    def store_record(self, path: Path, text: str) -> None:
        """Write a record atomically."""
        write_text_atomic(path, text)

    @contextmanager
    def lock(self, key: EngineKey) -> Iterator[None]:
        """Exclusive lock for building or fetching ``key``; stale temporary files of killed writers are removed.

        Only writers take it: a lookup reads without it, so a read-only cache still serves its engines.
        """
        with file_lock(self.root / key.folder / f".{key.name}.lock"):
            remove_stale_temporaries(self.root / key.folder)
            yield

    def cached_keys(self, target: str = "gpu") -> Iterator[EngineKey]:
        """The keys of the ``target`` engines whose manifest is in the cache (named as an engine, not yet read)."""
        for path in sorted(self.root.glob("*/*.json")):
            parsed = EngineKey.parse(path.relative_to(self.root).as_posix())
            if parsed is not None and parsed[0].target == target:
                yield parsed[0]

    def entries(self, target: str = "gpu") -> Iterator[Any]:
        """Every readable manifest of ``target`` engines in the cache."""
        for key in self.cached_keys(target):
            try:
                yield MANIFEST_TYPES[target].read(self.manifest_path(key))
            except InputError:
                continue
