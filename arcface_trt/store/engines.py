"""Engines in the S3 store: push a plan + manifest, fetch one into the local cache, list them.

Layout (the same as the local cache, under a key prefix; every name is :class:`EngineKey`'s)::

    s3://{bucket}/{prefix}trt{major}.{minor}/{model}-{precision}-sm{arch}.plan
    s3://{bucket}/{prefix}trt{major}.{minor}/{model}-{precision}-sm{arch}.json

Upload writes the plan first and the manifest last (a manifest means a complete
plan); both carry ``plan_sha256`` as object metadata. A fetch reads the manifest,
streams the plan into a temporary file inside the cache folder, checks its sha256
against the manifest and only then renames it into place and writes the manifest:
a failed fetch (network, corrupt object, disk) leaves the cache folder as it was.
:func:`fetch_for` takes the exact plan when the store has it, else the best compatible one
(:mod:`arcface_trt.artifacts.compat`), and says which.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arcface_trt.artifacts.cache import ArtifactCache
from arcface_trt.artifacts.compat import EXACT, Match, PlanRequest
from arcface_trt.artifacts.key import EngineKey, check_model_name
from arcface_trt.artifacts.manifest import MAX_MANIFEST_BYTES, CpuManifest, Manifest
from arcface_trt.config import TensorrtSection
from arcface_trt.errors import InputError, StoreError
from arcface_trt.fileio import atomic_writer, read_regular_file, write_text_atomic
from arcface_trt.store.s3 import DownloadDropped, ObjectInfo, ObjectTooLarge, S3Store, StoreSettings

#: Whole-download attempts when the connection drops mid-body (each restarts the temp file).
DOWNLOAD_ATTEMPTS = 2
#: Object metadata key holding the plan's sha256 (S3 sends it as ``x-amz-meta-plan_sha256``).
SHA_METADATA = "plan_sha256"
#: Store entries named in an "object missing" message before "and N more".
_MAX_LISTED = 12


class NoSuchPlan(StoreError):
    """The store has no manifest for a key (the caller says what it has instead)."""


class PlanRefused(StoreError):
    """The store's manifest for a key says its plan does not serve the request (nothing was downloaded)."""


@dataclass(frozen=True)
class FetchResult:
    """What a fetch did: where the plan is, and whether it was downloaded."""

    key: EngineKey
    plan_path: Path
    manifest_path: Path
    source: str
    downloaded: bool
    plan_bytes: int
    plan_sha256: str
    seconds: float
    attempts: int
    #: ``exact``, ``hardware-compatible`` or ``version-compatible`` (:mod:`arcface_trt.artifacts.compat`).
    match: str = EXACT
    #: The plan taken and why it serves, when it is not the very plan asked for.
    match_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record."""
        return {
            "model": self.key.model,
            "precision": self.key.precision,
            "sm_arch": self.key.sm_arch,
            "trt_version": self.key.trt_version,
            "engine_name": self.key.name,
            "match": self.match,
            "match_note": self.match_note,
            "weights": "stripped" if self.key.stripped else "full",
            "version_compatible": self.key.version_compatible,
            "plan_path": str(self.plan_path),
            "manifest_path": str(self.manifest_path),
            "source": self.source,
            "downloaded": self.downloaded,
            "plan_bytes": self.plan_bytes,
            "plan_sha256": self.plan_sha256,
            "seconds": round(self.seconds, 3),
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class StoreEntry:
    """One engine in the store, as listed (no manifest is downloaded for a listing)."""

    model: str
    precision: str
    sm_arch: str
    trt_version: str
    #: ``default``, or the variant's tags and recipe hash (``keep-1a2b3c4d``).
    variant: str
    plan_uri: str
    plan_bytes: int | None
    last_modified: str | None
    has_manifest: bool
    #: ``stripped`` or ``full``, and the plan's compatibility, as its name says (``same_cc`` is only in its manifest).
    weights: str = "full"
    hardware_compatible: bool = False
    version_compatible: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record."""
        return dict(self.__dict__)

    @property
    def complete(self) -> bool:
        """Plan and manifest are both there (a fetch takes only such entries)."""
        return self.has_manifest and self.plan_bytes is not None

    @property
    def label(self) -> str:
        """``trt10.16 fp16 sm90`` (for messages)."""
        state = "" if self.has_manifest else " (no manifest)"
        if self.plan_bytes is None:
            state = " (manifest only)"
        variant = "" if self.variant == "default" else f" {self.variant}"
        return f"trt{self.trt_version} {self.precision}{variant} {self.sm_arch}{state}"


def open_store(settings: TensorrtSection) -> S3Store:
    """The store configured by the ``tensorrt:`` section; StoreError when no bucket is set."""
    return S3Store(StoreSettings.from_section(settings))


# -- fetch ---------------------------------------------------------------------------------------


def fetch(
    settings: TensorrtSection,
    key: EngineKey,
    cache: ArtifactCache,
    force: bool = False,
    expected: dict[str, Any] | None = None,
) -> FetchResult:
    """Bring the store's plan for ``key`` into ``cache``; skip the download when the local copy is current.

    "Current" means the cached plan's sha256 equals both its own manifest and the store's
    manifest. With ``expected`` manifest fields, a stored plan whose manifest differs is refused
    before its plan is downloaded. Raises StoreError (one line) for every store-side failure;
    the cache folder is unchanged unless the fetch succeeds.
    """
    store = open_store(settings)
    try:
        return _fetch(store, key, cache, force, expected)
    except NoSuchPlan:
        raise _missing_error(store, key) from None


def _fetch(
    store: S3Store,
    key: EngineKey,
    cache: ArtifactCache,
    force: bool,
    expected: dict[str, Any] | None,
    match: Match | None = None,
) -> FetchResult:
    started = time.perf_counter()
    plan_uri = store.settings.uri(key.relpath)
    manifest_raw = store.get_bytes(key.manifest_relpath, MAX_MANIFEST_BYTES)
    if manifest_raw is None:
        raise NoSuchPlan(f"{store.settings.uri(key.manifest_relpath)} is gone")
    remote = _parse_manifest(manifest_raw, store.settings.uri(key.manifest_relpath))
    if remote.key != key:
        raise StoreError(
            f"{store.settings.uri(key.manifest_relpath)} describes {remote.key.relpath}, not {key.relpath}"
        )
    differences = remote.differences(expected or {})
    if match is not None and not match.accepts(remote.trt_version):
        differences.append(f"built by TensorRT {remote.trt_version}, which {match.runtime_version} cannot run")
    if differences:
        raise PlanRefused(f"{plan_uri} does not serve this request ({'; '.join(differences)}); it was not downloaded")
    plan_path, manifest_path = cache.path(key), cache.manifest_path(key)
    local = cache.lookup(key, {})
    current = local.hit and local.manifest.plan_sha256 == remote.plan_sha256
    if current and not force:
        sha, size, attempts = remote.plan_sha256, plan_path.stat().st_size, 0
    else:
        sha, size, attempts = _download_into(store, key, cache, remote)
    return FetchResult(
        key=key,
        plan_path=plan_path,
        manifest_path=manifest_path,
        source=plan_uri,
        downloaded=attempts > 0,
        plan_bytes=size,
        plan_sha256=sha,
        seconds=time.perf_counter() - started,
        attempts=attempts,
    )


def _download_into(store: S3Store, key: EngineKey, cache: ArtifactCache, remote: Manifest) -> tuple[str, int, int]:
    """Download the plan of ``key`` into ``cache`` with its (validated) manifest; (sha256, bytes, attempts).

    The plan streams into a temporary file, no longer than the manifest's ``plan_bytes``, is
    checked against its ``plan_sha256``, then renamed into place and the manifest written (as
    parsed, so the cache holds only what was checked), both under the key's lock; any failure
    leaves the cache as it was.
    """
    plan_path = cache.path(key)
    plan_uri = store.settings.uri(key.relpath)
    want_sha = remote.plan_sha256
    try:
        with _remove_new_folders(plan_path.parent), ExitStack() as locked:
            with atomic_writer(plan_path) as handle:
                sha, size, attempts = _download_plan(store, key, handle, remote.plan_bytes)
                if sha != want_sha:
                    raise StoreError(
                        f"sha256 mismatch: {plan_uri} has sha256 {sha[:16]}... but its manifest says "
                        f"{want_sha[:16]}... (corrupt or replaced object); it was not kept, "
                        "the cache is unchanged"
                    )
                # Rename the plan and write its manifest under the key's lock, so a build or
                # another fetch never sees this plan beside another manifest.
                locked.enter_context(cache.lock(key))
            write_text_atomic(cache.manifest_path(key), remote.to_json())
    except OSError as exc:
        raise StoreError(f"cannot write to the engine cache {cache.root}: {exc.strerror or exc}") from None
    return sha, size, attempts


def fetch_for(settings: TensorrtSection, wanted: PlanRequest, cache: ArtifactCache, force: bool = False) -> FetchResult:
    """The exact plan of ``wanted`` when the store has it, else the best compatible one, into ``cache``.

    Compatible plans are tried best first; one whose manifest does not keep its name's promise (another
    builder release than the loading TensorRT runs, other option fields) is passed over, unread. Raises
    StoreError when none serves (naming what the store holds for the model, and why plans were passed over).
    """
    store = open_store(settings)
    key = wanted.key
    try:
        return _fetch(store, key, cache, force, None)
    except NoSuchPlan:
        matches = wanted.candidates(complete_keys(store))
    passed_over = []
    for match in matches:
        try:
            result = _fetch(store, match.key, cache, force, match.expected(), match)
        except (NoSuchPlan, PlanRefused) as exc:  # removed since the listing, or not what its name promises
            passed_over.append(str(exc))
            continue
        return dataclasses.replace(result, match=match.kind, match_note=match.describe())
    missing = _missing_error(store, key)
    if not passed_over:
        raise missing
    raise StoreError(f"{missing}; passed over: {'; '.join(passed_over)}")


class StorePlans:
    """The engine store as the engine build's :class:`~arcface_trt.engine.build.PlanSource`.

    The engine build takes it as an argument, so the engine package never imports the store.
    """

    def __init__(self, settings: TensorrtSection) -> None:
        self.settings = settings

    def available(self) -> list[EngineKey]:
        """The keys of the complete plans in the store."""
        return complete_keys(open_store(self.settings))

    def fetch(self, key: EngineKey, cache: ArtifactCache, expected: dict[str, Any]) -> str:
        """:func:`fetch` a key whose manifest has the ``expected`` fields into ``cache``; say where it came from."""
        return fetch(self.settings, key, cache, expected=expected).source


def store_fetcher(settings: TensorrtSection) -> StorePlans:
    """The engine build's plan source for this store."""
    return StorePlans(settings)


def _download_plan(store: S3Store, key: EngineKey, handle: Any, plan_bytes: int | None) -> tuple[str, int, int]:
    """Stream the plan into ``handle``; a dropped connection restarts it (``DOWNLOAD_ATTEMPTS`` in all)."""
    attempt = 1
    while True:
        try:
            sha, size = store.download(key.relpath, handle, plan_bytes)
            return sha, size, attempt
        except DownloadDropped:
            if attempt >= DOWNLOAD_ATTEMPTS:
                raise
        attempt += 1
        handle.seek(0)
        handle.truncate()


@contextlib.contextmanager
def _remove_new_folders(folder: Path) -> Iterator[None]:
    """On failure, remove the folders up to ``folder`` that this block created (if left empty)."""
    created = []
    probe = folder
    while not probe.exists():
        created.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    try:
        yield
    except BaseException:
        for path in created:  # deepest first
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


def _parse_manifest(raw: bytes, where: str) -> Manifest:
    """A store manifest, checked by the one manifest parser; every problem is a StoreError (a store-side fault)."""
    try:
        return Manifest.from_json(raw, where)
    except InputError as exc:
        raise StoreError(str(exc)) from None


def _missing_error(store: S3Store, key: EngineKey) -> StoreError:
    """The manifest is absent: say whether the plan is there without it, else what the store has."""
    plan_uri = store.settings.uri(key.relpath)
    if store.head(key.relpath) is not None:
        return StoreError(
            f"manifest missing: {store.settings.uri(key.manifest_relpath)} does not exist although the plan does "
            "(an interrupted upload?); push the plan and its manifest again"
        )
    have = [e.label for e in list_entries_from(store) if e.model == key.model]
    if not have:
        return StoreError(f"no engine at {plan_uri}; the store holds nothing for model '{key.model}'")
    shown = ", ".join(have[:_MAX_LISTED]) + (f" and {len(have) - _MAX_LISTED} more" if len(have) > _MAX_LISTED else "")
    return StoreError(f"no engine at {plan_uri}; the store has for model '{key.model}': {shown}")


# -- push ----------------------------------------------------------------------------------------


def _digests(path: Path) -> tuple[str, str, int]:
    """sha256 and md5 (the single-PUT ETag) of a file, and its size, in one read."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


def _same_object(head: ObjectInfo | None, sha: str, md5: str, size: int) -> bool:
    """Does the stored plan hold these bytes? ETag equals the MD5 for a plain PUT; else trust our metadata."""
    if head is None or head.size != size:
        return False
    return head.etag == md5 or head.metadata.get(SHA_METADATA) == sha


def _refuse_cpu_engine(path: Path, manifest_raw: bytes) -> None:
    """InputError when ``path`` is a CPU engine: the store shares TensorRT plans, which are costly to build and
    tied to a GPU; a CPU engine is quick to build where it runs."""
    try:
        CpuManifest.from_json(manifest_raw)
    except InputError:
        return  # not a CPU engine's manifest: the plan's own checks follow
    raise InputError(
        f"{path} is a CPU engine (ONNX Runtime): CPU engines are not shared through the engine store; "
        "build it where it runs with arcface-trt build --target cpu"
    )


def push_plan(settings: TensorrtSection, plan_path: Path, overwrite: bool = False) -> dict:
    """Upload a plan and the manifest beside it; returns what was done.

    Refuses a plan without a manifest or whose sha256 differs from the manifest's. A store
    that already holds the same plan is left alone (``uploaded: false``); one holding a
    different plan under the same key is replaced only with ``overwrite``; a stored plan
    that does not match its own (identical) manifest is re-uploaded.
    """
    plan_path = Path(plan_path)
    if not plan_path.is_file():
        raise InputError(f"no plan file at {plan_path}")
    manifest_path = plan_path.with_suffix(".json")
    if not manifest_path.is_file():
        raise InputError(
            f"{plan_path} has no manifest beside it ({manifest_path.name}); a plan is pushed with its manifest"
        )
    manifest_raw = read_regular_file(manifest_path, MAX_MANIFEST_BYTES, "manifest")
    _refuse_cpu_engine(plan_path, manifest_raw)
    manifest = Manifest.from_json(manifest_raw, str(manifest_path))
    key = manifest.key
    sha, md5, size = _digests(plan_path)
    if sha != manifest.plan_sha256:
        raise InputError(
            f"{plan_path} has sha256 {sha[:16]}... but its manifest says {manifest.plan_sha256[:16]}...: "
            "the plan or the manifest was changed; rebuild it"
        )
    if manifest.plan_bytes not in (None, size):
        raise InputError(
            f"{plan_path} has {size:,} bytes but its manifest says {manifest.plan_bytes:,}: "
            "the manifest was changed; rebuild the plan"
        )
    store = open_store(settings)
    record: dict[str, Any] = {
        "model": key.model,
        "precision": key.precision,
        "sm_arch": key.sm_arch,
        "trt_version": manifest.trt_version,
        "plan_path": str(plan_path),
        "plan_uri": store.settings.uri(key.relpath),
        "manifest_uri": store.settings.uri(key.manifest_relpath),
        "plan_bytes": size,
        "plan_sha256": sha,
        "uploaded": False,
        "replaced": False,
    }
    try:
        remote_raw = store.get_bytes(key.manifest_relpath, MAX_MANIFEST_BYTES)
    except ObjectTooLarge:
        remote_raw = b""  # unreadable, like a malformed one
    if remote_raw is not None:
        try:
            remote_sha: str | None = _parse_manifest(remote_raw, record["manifest_uri"]).plan_sha256
        except StoreError:
            remote_sha = None  # an unreadable manifest is replaced like a different one
        if remote_sha == sha and _same_object(store.head(key.relpath), sha, md5, size):
            return record  # the same plan is stored: leave it (and its manifest) as they are
        # A stored manifest naming this very plan over missing or damaged plan bytes is repaired
        # without --overwrite: the result is what that manifest already promises.
        if remote_sha != sha and not overwrite:
            there = f"sha256 {remote_sha[:16]}..." if remote_sha else "a manifest that cannot be read"
            raise StoreError(
                f"{record['plan_uri']} already holds a different plan ({there} there, "
                f"sha256 {sha[:16]}... here); pass --overwrite to replace it"
            )
        record["replaced"] = True
    # Plan first, manifest last: a manifest in the store always means a complete plan.
    store.put_file(key.relpath, plan_path, {SHA_METADATA: sha}, "application/octet-stream")
    store.put_bytes(key.manifest_relpath, manifest_raw, {SHA_METADATA: sha}, "application/json")
    record["uploaded"] = True
    return record


# -- list ----------------------------------------------------------------------------------------


def _scan(store: S3Store) -> tuple[dict[EngineKey, ObjectInfo], set[EngineKey]]:
    """The plans (with their objects) and the manifests under the store's prefix, by key."""
    plans: dict[EngineKey, ObjectInfo] = {}
    manifests: set[EngineKey] = set()
    for info in store.list():
        parsed = EngineKey.parse(info.relpath)
        if parsed is None or parsed[0].target != "gpu":
            continue
        key, is_manifest = parsed
        if is_manifest:
            manifests.add(key)
        else:
            plans[key] = info
    return plans, manifests


def complete_keys(store: S3Store) -> list[EngineKey]:
    """The keys of the plans whose plan and manifest are both in the store."""
    plans, manifests = _scan(store)
    return sorted(set(plans) & manifests, key=_listing_order)


def list_entries_from(store: S3Store) -> list[StoreEntry]:
    """Every plan (or orphan manifest) under the store's prefix, sorted by model, TensorRT, precision, arch."""
    plans, manifests = _scan(store)
    entries = []
    for key in sorted(set(plans) | manifests, key=_listing_order):
        plan = plans.get(key)
        entries.append(
            StoreEntry(
                model=key.model,
                precision=key.precision,
                sm_arch=key.sm_arch,
                trt_version=str(key.trt_version),
                variant=str(key.variant),
                plan_uri=store.settings.uri(key.relpath),
                plan_bytes=plan.size if plan else None,
                last_modified=plan.last_modified.isoformat() if plan and plan.last_modified else None,
                has_manifest=key in manifests,
                weights="stripped" if key.stripped else "full",
                hardware_compatible=key.hardware_compatible,
                version_compatible=key.version_compatible,
            )
        )
    return entries


def _listing_order(key: EngineKey) -> tuple[str, str, str, str, str]:
    return key.model, str(key.trt_version), key.precision, key.sm_arch, str(key.variant)


def list_engines(settings: TensorrtSection, model: str | None = None) -> list[StoreEntry]:
    """What the configured store holds (optionally only for ``model``, which must be a valid model name)."""
    if model is not None:
        check_model_name(model)
    entries = list_entries_from(open_store(settings))
    return [e for e in entries if model is None or e.model == model]


__all__ = [
    "FetchResult",
    "StoreEntry",
    "StorePlans",
    "fetch",
    "fetch_for",
    "list_engines",
    "push_plan",
    "store_fetcher",
]
