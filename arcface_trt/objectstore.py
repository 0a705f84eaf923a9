"""Object-store I/O: ``s3://bucket/key`` (and whatever ``pyarrow.fs`` resolves) behind one pyarrow filesystem.

``s3://`` URIs use the engine store's S3 settings (:class:`~arcface_trt.store.s3.S3Endpoint`:
the endpoint from the config, the command line or ``AWS_ENDPOINT_URL``, the region; path-style
addressing for a custom endpoint), its timeouts and attempts, and the AWS SDK's credential chain
(environment, shared files and profile, instance role). Other schemes (``gs://``, ``hdfs://``,
...) are whatever :func:`pyarrow.fs.FileSystem.from_uri` makes of them.

An :class:`ObjectStore` holds only the endpoint and region, never a credential: it is what
travels to Ray workers, and each process makes its own filesystem with its own node's
credentials. Every failure is one line naming the URI, without any secret
(:func:`~arcface_trt.redact.redact`).
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from arcface_trt.config import TensorrtSection
from arcface_trt.errors import InputError, first_line, short_repr
from arcface_trt.lazy import lazy_import
from arcface_trt.redact import redact
from arcface_trt.store.s3 import CONNECT_TIMEOUT_S, MAX_ATTEMPTS, READ_TIMEOUT_S, S3Endpoint, S3Store, StoreSettings

pafs = lazy_import("pyarrow.fs")

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
#: AWS SDK error names (in pyarrow's messages) and what they mean for the user.
_AWS_ERRORS = (
    ("NO_SUCH_BUCKET", "the bucket does not exist"),
    ("ACCESS_DENIED", "access denied for the AWS credentials in use"),
    ("INVALID_ACCESS_KEY_ID", "the endpoint rejected the AWS credentials"),
    ("SIGNATURE_DOES_NOT_MATCH", "the endpoint rejected the AWS credentials"),
    ("NETWORK_CONNECTION", "cannot reach the S3 endpoint {endpoint}"),
    ("Unable to connect", "cannot reach the S3 endpoint {endpoint}"),
    ("Couldn't connect", "cannot reach the S3 endpoint {endpoint}"),
)


def is_uri(text: str | object) -> bool:
    """True for ``scheme://...`` other than ``file://`` (a local path written as a URI)."""
    found = _SCHEME.match(str(text))
    return found is not None and found.group(1).lower() != "file"


def local_path(text: str) -> str:
    """A local path as given, or the path of a ``file://`` URI."""
    found = _SCHEME.match(text)
    return text[len(found.group(0)) :] if found else text


def join(uri: str, name: str) -> str:
    """``uri/name`` (one slash between)."""
    return uri.rstrip("/") + "/" + name.lstrip("/")


def parent(uri: str) -> str:
    """The "folder" of a URI: everything before its last ``/``."""
    return uri.rstrip("/").rsplit("/", 1)[0]


def basename(uri: str) -> str:
    """The last segment of a URI."""
    return uri.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Remote:
    """One URI's filesystem and the path inside it; ``prefix + path`` is the URI again."""

    fs: Any
    prefix: str
    path: str

    @property
    def uri(self) -> str:
        """The URI this names."""
        return self.prefix + self.path


def too_large(uri: str, size: int, max_bytes: int) -> str:
    """Why an object of ``size`` bytes is not read: larger than ``max_bytes``."""
    return f"{redact(uri)} is {size:,} bytes, more than the {max_bytes:,} it may be"


@dataclass(frozen=True)
class ObjectStore:
    """How to reach object stores: the S3 endpoint and region (picklable; no credential)."""

    endpoint: S3Endpoint = field(default_factory=S3Endpoint)

    @classmethod
    def from_section(cls, section: TensorrtSection) -> ObjectStore:
        """The engine store's endpoint and region (config, command line, ``AWS_ENDPOINT_URL``/``AWS_REGION``)."""
        return cls(S3Endpoint.from_section(section))

    @classmethod
    def default(cls) -> ObjectStore:
        """Without a config: AWS, or ``AWS_ENDPOINT_URL`` and ``AWS_REGION`` when set."""
        return cls.from_section(TensorrtSection())

    def resolve(self, uri: str) -> Remote:
        """The filesystem and path of ``uri``; an unusable URI is an InputError."""
        found = _SCHEME.match(uri)
        if found is None:
            raise InputError(f"not an object-store URI: {short_repr(uri)}")
        scheme = found.group(1).lower()
        rest = uri[len(found.group(0)) :]
        if scheme == "s3":
            bucket = rest.split("/", 1)[0]
            if not bucket or any(c.isspace() or not c.isprintable() for c in rest):
                raise InputError(f"{short_repr(uri)} is not an s3://bucket/key URI")
            return Remote(_s3_filesystem(self.endpoint.endpoint_url, self.endpoint.region), "s3://", rest)
        try:
            fs, path = pafs.FileSystem.from_uri(uri)
        except Exception as exc:  # pyarrow raises ArrowInvalid/ArrowNotImplementedError/ValueError for unknown schemes
            raise InputError(f"cannot open {redact(uri)}: {redact(first_line(exc))}") from None
        if not uri.endswith(path):
            raise InputError(f"cannot use {redact(uri)}: pyarrow reads it as {redact(path)}")
        return Remote(fs, uri[: len(uri) - len(path)], path)

    def errors(self, action: str, uri: str) -> contextlib.AbstractContextManager[None]:
        """:func:`fs_errors` for ``uri``, naming this store's S3 endpoint when ``uri`` is an ``s3://`` one."""
        return fs_errors(action, uri, self.endpoint.label if uri.startswith("s3://") else "")

    # -- small operations, each a one-line InputError on failure ------------------------------------
    def info(self, uri: str) -> Any:
        """pyarrow's ``FileInfo`` of ``uri`` (type NotFound when absent)."""
        remote = self.resolve(uri)
        with self.errors("read", uri):
            return remote.fs.get_file_info(remote.path)

    def exists(self, uri: str) -> bool:
        """True when ``uri`` names an object (or a folder of objects)."""
        return self.info(uri).type != pafs.FileType.NotFound

    def is_file(self, uri: str) -> bool:
        """True when ``uri`` names an object."""
        return self.info(uri).type == pafs.FileType.File

    def list_files(self, uri: str) -> list[tuple[str, int]]:
        """Every object under the folder ``uri`` (recursive) as ``(uri, size)``, sorted; [] when there is none."""
        remote = self.resolve(uri.rstrip("/"))
        with self.errors("list", uri):
            infos = remote.fs.get_file_info(pafs.FileSelector(remote.path, recursive=True, allow_not_found=True))
        files = [(remote.prefix + i.path, int(i.size or 0)) for i in infos if i.type == pafs.FileType.File]
        return sorted(files)

    def read_bytes(self, uri: str, max_bytes: int) -> bytes:
        """The content of one object of at most ``max_bytes`` (a larger one is refused before it is read)."""
        remote = self.resolve(uri)
        with self.errors("read", uri), remote.fs.open_input_file(remote.path) as handle:
            size = handle.size()
            if size > max_bytes:
                raise InputError(too_large(uri, size, max_bytes))
            return handle.read()

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write one object in a single request (readers see the old or the new content)."""
        remote = self.resolve(uri)
        with self.errors("write", uri), remote.fs.open_output_stream(remote.path) as handle:
            handle.write(data)

    def delete(self, uri: str) -> None:
        """Delete one object (absent is fine)."""
        remote = self.resolve(uri)
        if remote.prefix == "s3://":
            # pyarrow's delete_file writes an empty "folder/" object to keep an emulated folder that would
            # become empty: objects the tool never meant to leave. S3's own DELETE removes just the object.
            bucket, _, key = remote.path.partition("/")
            _s3_store(self.endpoint, bucket).delete(key)
            return
        with self.errors("delete", uri):
            if remote.fs.get_file_info(remote.path).type == pafs.FileType.File:
                remote.fs.delete_file(remote.path)


@functools.lru_cache(maxsize=8)
def _s3_filesystem(endpoint_url: str | None, region: str | None) -> Any:
    """One pyarrow S3 filesystem per endpoint and region in this process."""
    options: dict[str, Any] = {
        "region": region,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "request_timeout": READ_TIMEOUT_S,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=MAX_ATTEMPTS),
    }
    if endpoint_url:
        scheme, _, hostport = endpoint_url.partition("://")
        # S3-compatible servers (MinIO, moto, Ceph) are addressed by path: pyarrow does so with an endpoint override.
        options.update(endpoint_override=hostport.rstrip("/"), scheme=scheme, force_virtual_addressing=False)
    try:
        return pafs.S3FileSystem(**options)
    except Exception as exc:  # pyarrow validates the options itself
        raise InputError(f"cannot use the S3 endpoint {redact(endpoint_url or 'AWS S3')}: {first_line(exc)}") from None


@functools.lru_cache(maxsize=8)
def _s3_store(endpoint: S3Endpoint, bucket: str) -> S3Store:
    """The engine store's S3 client on one bucket (for deletes), one per endpoint and bucket in this process."""
    return S3Store(StoreSettings(bucket, prefix="", endpoint_url=endpoint.endpoint_url, region=endpoint.region))


def describe_error(exc: BaseException, action: str, uri: str, endpoint: str = "") -> str:
    """One line for a pyarrow filesystem error: what failed, on which URI, and why (without secrets)."""
    where = redact(uri)
    if isinstance(exc, FileNotFoundError):
        return f"not found: {where}"
    if isinstance(exc, PermissionError):
        return f"permission denied: cannot {action} {where}"
    text = " ".join(str(exc).split())
    for needle, meaning in _AWS_ERRORS:
        if needle in text:
            return redact(f"cannot {action} {where}: {meaning.format(endpoint=endpoint).rstrip()}")
    return redact(f"cannot {action} {where}: {text or type(exc).__name__}")


@contextmanager
def fs_errors(action: str, uri: str, endpoint: str = "") -> Iterator[None]:
    """Turn pyarrow's OSError/ArrowException inside the block into a one-line InputError about ``uri``.

    ``endpoint``: the S3 endpoint as it may be printed, named when it cannot be reached.
    """
    try:
        yield
    except InputError:
        raise
    except (OSError, ValueError) as exc:  # pyarrow's errors are OSError or ArrowInvalid (a ValueError)
        raise InputError(describe_error(exc, action, uri, endpoint)) from None
