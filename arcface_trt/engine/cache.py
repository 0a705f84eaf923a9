"""Local engine cache: ``{root}/trt{major}.{minor}/{model}-{precision}-sm{arch}.plan`` + ``.json``.

A cached plan is used only when its manifest matches the request and the plan's
sha256 equals the manifest's ``plan_sha256``. Writes are atomic (plan first, manifest
last: a manifest means a complete plan), and builds of one key hold a file lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arcface_trt.engine.key import EngineKey, Manifest
from arcface_trt.errors import InputError
from arcface_trt.fileio import sha256_file, write_bytes_atomic, write_text_atomic
from arcface_trt.filelock import file_lock


@dataclass(frozen=True)
class CacheLookup:
    """Result of looking a key up: the plan and manifest when usable, else why not."""

    plan_path: Path
    manifest_path: Path
    manifest: Manifest | None
    reasons: tuple[str, ...]

    @property
    def hit(self) -> bool:
        """True when the cached plan can be used as it is."""
        return self.manifest is not None and not self.reasons


class EngineCache:
    """The local folder of plans and manifests."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def plan_path(self, key: EngineKey) -> Path:
        """Where the plan of ``key`` lives."""
        return self.root / key.plan_relpath

    def manifest_path(self, key: EngineKey) -> Path:
        """Where the manifest of ``key`` lives."""
        return self.root / key.manifest_relpath

    def lookup(self, key: EngineKey, expected: dict[str, Any], verify_sha: bool = True) -> CacheLookup:
        """Check the cached plan of ``key`` against ``expected`` manifest values."""
        plan, manifest_path = self.plan_path(key), self.manifest_path(key)
        if not plan.exists():
            return CacheLookup(plan, manifest_path, None, ("no cached plan",))
        if not manifest_path.exists():
            return CacheLookup(plan, manifest_path, None, ("cached plan has no manifest",))
        try:
            manifest = Manifest.read(manifest_path)
        except InputError as exc:
            return CacheLookup(plan, manifest_path, None, (str(exc),))
        reasons = manifest.differences(expected)
        if verify_sha and not reasons and sha256_file(plan) != manifest.plan_sha256:
            reasons.append("cached plan's sha256 does not match its manifest (corrupt or replaced)")
        return CacheLookup(plan, manifest_path, manifest, tuple(reasons))

    def store(self, key: EngineKey, plan: bytes, manifest: Manifest) -> Path:
        """Write the plan, then the manifest, atomically; returns the plan path."""
        path = self.plan_path(key)
        write_bytes_atomic(path, plan)
        write_text_atomic(self.manifest_path(key), manifest.to_json())
        return path

    @contextmanager
    def lock(self, key: EngineKey) -> Iterator[None]:
        """Exclusive lock for building or fetching ``key``."""
        with file_lock(self.root / key.folder / f".{key.plan_name}.lock"):
            yield

    def entries(self) -> Iterator[Manifest]:
        """Every readable manifest in the cache."""
        for path in sorted(self.root.glob("trt*/*.json")):
            try:
                yield Manifest.read(path)
            except InputError:
                continue
