"""The S3 side of the engine store: settings, one boto3 client, and one-line errors.

Credentials come only from boto3's own chain (environment, shared files, profile,
instance role) and never appear in a message: errors are built from the S3 error
code, the bucket/key and the endpoint, and every message goes through
:func:`arcface_trt.redact.redact` (URL credentials, the credential values in use).

Every call is bounded: connect and read timeouts plus a fixed number of attempts
(botocore's "standard" retry mode, which also retries dropped connections), so an
unreachable endpoint fails within about ``MAX_ATTEMPTS * CONNECT_TIMEOUT_S`` plus
the back-off, with a message naming the endpoint.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from arcface_trt.config import TensorrtSection
from arcface_trt.errors import StoreError, short_repr
from arcface_trt.lazy import lazy_import
from arcface_trt.names import ENDPOINT_ENV_VARS, REGION_ENV_VARS
from arcface_trt.redact import redact
from arcface_trt.version import __version__

boto3 = lazy_import("boto3")
bx = lazy_import("botocore.exceptions")
botocore_config = lazy_import("botocore.config")
botocore_loaders = lazy_import("botocore.loaders")
botocore_session = lazy_import("botocore.session")
urllib3_exceptions = lazy_import("urllib3.exceptions")

#: Seconds to open a TCP connection to the endpoint (per attempt).
CONNECT_TIMEOUT_S = 4.0
#: Seconds to wait for the next bytes of a response (per read, per attempt).
READ_TIMEOUT_S = 20.0
#: Total attempts of one request (first try included) on throttling and connection errors.
MAX_ATTEMPTS = 3
#: Bytes read from a download stream at a time.
CHUNK_BYTES = 1 << 20

#: S3 error codes meaning "these credentials were not accepted" (as opposed to "not allowed").
_REJECTED_CREDENTIALS = {
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
}
#: A missing key: S3 names it in GET's error body; HEAD has no body, only the status.
_NOT_FOUND = {"NoSuchKey"}
_HEAD_NOT_FOUND = {"NoSuchKey", "NotFound", "404"}
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


class DownloadDropped(StoreError):
    """The connection broke while a download was streaming (the caller may try again)."""


class ObjectTooLarge(StoreError):
    """An object is larger than what may be read of it (its body was not read)."""


def _size_mismatch(uri: str, what: str, expected_bytes: int | None) -> StoreError:
    said = f"its manifest says {expected_bytes:,}" if expected_bytes is not None else "its Content-Length said less"
    return StoreError(
        f"size mismatch: {uri} {what} but {said} (corrupt or replaced object); it was not kept, the cache is unchanged"
    )


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` when it is an ``http(s)://host[:port]`` URL, else a StoreError (shown without credentials).

    ``urlsplit`` raises ValueError for an unclosed IPv6 bracket and an out-of-range port: both
    are a one-line error here, never a traceback.
    """
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - validates the port (ValueError when it is not 0..65535)
    except ValueError as exc:
        raise StoreError(f"S3 endpoint {redact(endpoint)!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in endpoint):
        raise StoreError(f"S3 endpoint must look like http(s)://host[:port], got {redact(endpoint)!r}")
    return endpoint


def normalize_prefix(prefix: str | None) -> str:
    """``"engines"``, ``"/engines/"`` -> ``"engines/"``; ``"team//engines"`` -> ``"team/engines/"``; empty: the root.

    A ``.`` or ``..`` segment or a control character is a StoreError: a server that normalises
    path-style URLs would resolve ``../`` into another bucket.
    """
    segments = [s for s in (prefix or "").strip().split("/") if s]
    if any(s in (".", "..") for s in segments) or any(not c.isprintable() for s in segments for c in s):
        raise StoreError(
            f"engine store prefix {short_repr(prefix)} may not hold '.' or '..' segments or control characters"
        )
    return "".join(f"{s}/" for s in segments)


@dataclass(frozen=True)
class S3Endpoint:
    """Which S3 service to talk to: an endpoint URL (None: AWS) and a region (None: the SDK's default).

    The one resolution of these settings: the engine store and ``embed``'s object-store input and
    output (``s3://`` URIs) both use it.
    """

    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_section(cls, section: TensorrtSection) -> S3Endpoint:
        """From the ``tensorrt:`` config section (command-line overrides already applied).

        The endpoint and region fall back to :data:`~arcface_trt.names.ENDPOINT_ENV_VARS` and
        :data:`~arcface_trt.names.REGION_ENV_VARS` (first set wins) when the config leaves them null.
        """
        endpoint = (section.engine_s3_endpoint_url or "").strip() or _env(*ENDPOINT_ENV_VARS)
        if endpoint:
            check_endpoint(endpoint)
        region = (section.engine_s3_region or "").strip() or _env(*REGION_ENV_VARS)
        return cls(endpoint_url=endpoint, region=region)

    @property
    def label(self) -> str:
        """The endpoint as it may be printed."""
        if self.endpoint_url:
            return redact(self.endpoint_url)
        return f"AWS S3 ({self.region})" if self.region else "AWS S3"


@dataclass(frozen=True)
class StoreSettings:
    """Where the store is: bucket, key prefix, endpoint and region (resolved once)."""

    bucket: str
    prefix: str = "engines/"
    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_section(cls, section: TensorrtSection) -> StoreSettings:
        """Settings from the ``tensorrt:`` config section (command-line overrides already applied).

        Endpoint and region as :meth:`S3Endpoint.from_section` resolves them.
        """
        bucket = (section.engine_s3_bucket or "").strip()
        if bucket.startswith("s3://"):
            bucket = bucket[len("s3://") :].strip("/")
        if not bucket:
            raise StoreError(
                "no engine bucket configured: set tensorrt.engine_s3_bucket in arcface_tensorrt.yaml or pass --bucket"
            )
        if "/" in bucket:
            raise StoreError(
                f"engine bucket must be a bucket name, got {short_repr(bucket)} "
                "(put folders in tensorrt.engine_s3_prefix)"
            )
        endpoint = S3Endpoint.from_section(section)
        return cls(
            bucket=bucket,
            prefix=normalize_prefix(section.engine_s3_prefix),
            endpoint_url=endpoint.endpoint_url,
            region=endpoint.region,
        )

    def object_key(self, relpath: str) -> str:
        """S3 key of a path relative to the prefix (``trt10.16/x.plan``)."""
        return f"{self.prefix}{relpath}"

    def uri(self, relpath: str = "") -> str:
        """``s3://bucket/prefix/relpath``."""
        return f"s3://{self.bucket}/{self.object_key(relpath)}"

    @property
    def endpoint_label(self) -> str:
        """The endpoint as it may be printed."""
        return S3Endpoint(self.endpoint_url, self.region).label


@dataclass(frozen=True)
class ObjectInfo:
    """What HEAD or LIST says about one object."""

    relpath: str
    size: int
    last_modified: datetime | None
    etag: str | None
    metadata: dict[str, str]


_LOADER: Any = None


def _botocore_session() -> Any:
    """A fresh botocore session (credentials resolved anew) sharing one parsed-API-model loader.

    Parsing the S3 API model is most of a client's creation time (~0.3 s); the model never
    changes within a process, so later stores in the same process reuse it.
    """
    global _LOADER
    session = botocore_session.get_session()
    if _LOADER is None:
        _LOADER = botocore_loaders.create_loader(session.get_config_variable("data_path"))
    session.register_component("data_loader", _LOADER)
    return session


class S3Store:
    """A bucket and prefix behind one boto3 client; every failure is a one-line :class:`StoreError`."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        config = botocore_config.Config(
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
            # S3-compatible servers (MinIO, moto, Ceph) are addressed by path, not by bucket subdomain.
            s3={"addressing_style": "path"} if settings.endpoint_url else None,
            user_agent_extra=f"arcface-trt/{__version__}",
        )
        try:
            self._session = boto3.session.Session(botocore_session=_botocore_session(), region_name=settings.region)
            self.client = self._session.client("s3", endpoint_url=settings.endpoint_url, config=config)
        except (bx.BotoCoreError, ValueError) as exc:
            raise self._error(exc, "connect to", settings.uri()) from None

    # -- error mapping -------------------------------------------------------------------------

    def _secrets(self, exc: BaseException) -> list[str]:
        """The session's credential values (profile files, roles) to scrub from a message about ``exc``.

        The environment's credential variables and URL credentials are :func:`redact`'s own.
        """
        values: list[str] = []
        session = getattr(self, "_session", None)
        # With no credentials found, asking again would only walk the provider chain a second time.
        if session is not None and not isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
            try:
                creds = session.get_credentials()  # resolved when the client was made: no new lookup
                frozen = creds.get_frozen_credentials() if creds is not None else None
            except Exception:  # a failing lookup must not replace the error being reported
                frozen = None
            if frozen is not None:
                values += [frozen.secret_key or "", frozen.token or "", frozen.access_key or ""]
        return values

    def _error(self, exc: BaseException, action: str, uri: str) -> StoreError:
        """Map a botocore exception to one line that names what failed and where, without any credential."""
        return StoreError(redact(self._describe(exc, action, uri), self._secrets(exc)))

    def _describe(self, exc: BaseException, action: str, uri: str) -> str:

        where = self.settings.endpoint_label
        bucket = self.settings.bucket
        if isinstance(exc, bx.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket":
                return f"bucket '{bucket}' does not exist at {where}"
            if code in _REJECTED_CREDENTIALS:
                return f"{where} rejected the AWS credentials ({code}) when trying to {action} {uri}"
            if code in ("AccessDenied", "AllAccessDisabled", "403") or status == 403:
                return f"access denied: the AWS credentials in use may not {action} {uri} ({code or 'HTTP 403'})"
            if code in _NOT_FOUND:
                return f"not found: {uri}"
            if code == "404":
                return f"{where} answered HTTP 404 without an S3 error to {action} {uri}: is it an S3 server?"
            if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "301") or status == 301:
                return (
                    f"bucket '{bucket}' is in another region than {where}: "
                    "set tensorrt.engine_s3_region or pass --region"
                )
            message = " ".join(str(error.get("Message") or "").split())
            return f"S3 error {code or status} when trying to {action} {uri}" + (f": {message}" if message else "")
        if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError | bx.CredentialRetrievalError):
            return (
                f"no usable AWS credentials to {action} {uri}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or AWS_PROFILE, or run where an instance role is attached"
            )
        if isinstance(exc, bx.ProfileNotFound):
            return f"AWS profile not found: {exc.kwargs.get('profile')} (check AWS_PROFILE)"
        if isinstance(exc, bx.ConnectTimeoutError):
            reason = f"connect timeout {CONNECT_TIMEOUT_S:g} s"
        elif isinstance(exc, bx.ReadTimeoutError):
            reason = f"no answer within {READ_TIMEOUT_S:g} s"
        elif isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError | bx.ConnectionError):
            found = _ERRNO.search(str(exc.kwargs.get("error", exc)))
            reason = found.group(1).strip().lower() if found else "connection failed"
        else:
            reason = None
        if reason is not None:
            return f"cannot reach the S3 endpoint {where} ({reason}, {MAX_ATTEMPTS} attempts) to {action} {uri}"
        if isinstance(exc, bx.ResponseStreamingError | bx.IncompleteReadError):
            return f"connection dropped by {where} while trying to {action} {uri}; run the command again"
        if isinstance(exc, bx.ParamValidationError):
            return f"invalid S3 request to {action} {uri}: {' '.join(str(exc).split())}"
        if isinstance(exc, ValueError):
            return f"invalid S3 endpoint {where}: {exc}"
        return f"S3 failure when trying to {action} {uri}: {type(exc).__name__}: {' '.join(str(exc).split())}"

    @staticmethod
    def _is_not_found(exc: BaseException, head: bool = False) -> bool:

        if not isinstance(exc, bx.ClientError):
            return False
        code = str(exc.response.get("Error", {}).get("Code") or "")
        return code in (_HEAD_NOT_FOUND if head else _NOT_FOUND)

    # -- operations ----------------------------------------------------------------------------

    def head(self, relpath: str) -> ObjectInfo | None:
        """Size, date, ETag and metadata of one object; None when it does not exist."""
        try:
            response = self.client.head_object(Bucket=self.settings.bucket, Key=self.settings.object_key(relpath))
        except (bx.BotoCoreError, bx.ClientError) as exc:
            if self._is_not_found(exc, head=True):
                return None
            raise self._error(exc, "read", self.settings.uri(relpath)) from None
        return ObjectInfo(
            relpath=relpath,
            size=int(response.get("ContentLength", 0)),
            last_modified=response.get("LastModified"),
            etag=str(response.get("ETag", "")).strip('"') or None,
            metadata=dict(response.get("Metadata") or {}),
        )

    def get_bytes(self, relpath: str, max_bytes: int) -> bytes | None:
        """A small object's content (a manifest) of at most ``max_bytes``; None when it does not exist.

        A larger object is refused from its Content-Length, before its body is read; a server
        that sends more than it announced is cut off after ``max_bytes + 1`` bytes.
        """
        uri = self.settings.uri(relpath)
        try:
            response = self.client.get_object(Bucket=self.settings.bucket, Key=self.settings.object_key(relpath))
        except (bx.BotoCoreError, bx.ClientError) as exc:
            if self._is_not_found(exc):
                return None
            raise self._error(exc, "download", uri) from None
        body = response["Body"]
        try:
            size = response.get("ContentLength")
            data = b"" if size is not None and int(size) > max_bytes else body.read(max_bytes + 1)
        except (bx.BotoCoreError, urllib3_exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
            raise self._error(exc, "download", uri) from None
        finally:
            body.close()
        if (size is not None and int(size) > max_bytes) or len(data) > max_bytes:
            raise ObjectTooLarge(f"{uri} is larger than {max_bytes:,} bytes, the most it may be; it was not read")
        return data

    def download(self, relpath: str, handle: BinaryIO, expected_bytes: int | None = None) -> tuple[str, int]:
        """Stream an object into ``handle``; returns (sha256 hex, bytes).

        With ``expected_bytes`` (the manifest's ``plan_bytes``) an object of another size is
        refused from its Content-Length before its body is read, and a body that runs longer is
        cut off there. A connection that breaks mid-body raises :class:`DownloadDropped`
        (botocore does not retry a body that is already streaming); a missing object raises a
        not-found StoreError.
        """
        uri = self.settings.uri(relpath)
        try:
            response = self.client.get_object(Bucket=self.settings.bucket, Key=self.settings.object_key(relpath))
        except (bx.BotoCoreError, bx.ClientError) as exc:
            raise self._error(exc, "download", uri) from None
        expected = response.get("ContentLength")
        body = response["Body"]
        limit = expected_bytes if expected_bytes is not None else expected
        digest, received = hashlib.sha256(), 0
        try:
            if expected_bytes is not None and expected is not None and int(expected) != expected_bytes:
                raise _size_mismatch(uri, f"is {int(expected):,} bytes", expected_bytes)
            while True:
                try:
                    chunk = body.read(CHUNK_BYTES)
                except (bx.BotoCoreError, urllib3_exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
                    raise DownloadDropped(
                        f"connection dropped while downloading {uri} ({received} of {expected} bytes received, "
                        f"{type(exc).__name__}); nothing was written to the cache: run the command again"
                    ) from None
                if not chunk:
                    break
                received += len(chunk)
                if limit is not None and received > int(limit):
                    raise _size_mismatch(uri, f"sent more than {int(limit):,} bytes", expected_bytes)
                handle.write(chunk)
                digest.update(chunk)
        finally:
            body.close()
        if expected is not None and received != int(expected):
            raise DownloadDropped(
                f"connection dropped while downloading {uri} ({received} of {expected} bytes received); "
                "nothing was written to the cache: run the command again"
            )
        if expected_bytes is not None and received != expected_bytes:  # a server that sent no Content-Length
            raise _size_mismatch(uri, f"ended after {received:,} bytes", expected_bytes)
        return digest.hexdigest(), received

    def put_file(self, relpath: str, path: Path, metadata: dict[str, str], content_type: str) -> None:
        """Upload a file in one PUT (atomic on the server: readers see the old or the new object)."""
        with open(path, "rb") as handle:
            self.put_bytes(relpath, handle, metadata, content_type)

    def put_bytes(self, relpath: str, data: bytes | BinaryIO, metadata: dict[str, str], content_type: str) -> None:
        """Upload bytes or an open binary file in one PUT."""
        uri = self.settings.uri(relpath)
        try:
            self.client.put_object(
                Bucket=self.settings.bucket,
                Key=self.settings.object_key(relpath),
                Body=data,
                Metadata=metadata,
                ContentType=content_type,
            )
        except (bx.BotoCoreError, bx.ClientError) as exc:
            raise self._error(exc, "upload to", uri) from None

    def delete(self, relpath: str) -> None:
        """Delete one object (an absent one is fine: S3's DELETE says the same)."""
        try:
            self.client.delete_object(Bucket=self.settings.bucket, Key=self.settings.object_key(relpath))
        except (bx.BotoCoreError, bx.ClientError) as exc:
            raise self._error(exc, "delete", self.settings.uri(relpath)) from None

    def list(self, relprefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under the prefix (paginated); keys are given relative to the prefix."""
        start = len(self.settings.prefix)
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.settings.bucket, Prefix=self.settings.object_key(relprefix)
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        relpath=str(item["Key"])[start:],
                        size=int(item.get("Size", 0)),
                        last_modified=item.get("LastModified"),
                        etag=str(item.get("ETag", "")).strip('"') or None,
                        metadata={},
                    )
        except (bx.BotoCoreError, bx.ClientError) as exc:
            raise self._error(exc, "list", self.settings.uri(relprefix)) from None
