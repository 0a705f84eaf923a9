"""Files the tool reads and writes: bounded reads of regular files, and atomic writes (a temporary file
or folder beside the target, renamed into place)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from arcface_trt.errors import InputError

#: A temporary file of :func:`atomic_writer` left this long (a killed process) is removed by the next writer.
STALE_TEMP_SECONDS = 3600.0
#: The names :func:`atomic_writer` gives its temporary files: ``.{target name}.{8 random characters}.tmp``.
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def read_regular_file(path: str | Path, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of ``path``: a regular file of at most ``max_bytes``, else an :class:`InputError` naming ``what``.

    The file is opened without blocking and checked with ``fstat`` before anything is read,
    so a FIFO, a device (``/dev/zero``) or a folder is refused at once instead of hanging or
    reading until memory runs out; at most ``max_bytes + 1`` bytes are ever read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a pipe, socket or device is not read)"
        raise InputError(f"{what} {path} is {kind}")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(f"{what} {path} is larger than {max_bytes:,} bytes, the most a {what} may be")
    return data


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` only if the block finishes without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # see _TEMP_NAME
    try:
        # mkstemp creates 0600; give the finished file the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def is_temporary_name(name: str) -> bool:
    """True for a name :func:`atomic_writer` gives its temporary files."""
    return bool(_TEMP_NAME.fullmatch(name))


def remove_stale_temporaries(folder: Path, older_than_s: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Remove the temporary files of :func:`atomic_writer` in ``folder`` untouched for ``older_than_s``.

    A process killed while writing (a fetch, a build) leaves its temporary file; a live writer
    keeps its file's modification time fresh. Only regular files named the way this module
    names them are removed, never anything else. Returns what was removed.
    """
    removed = []
    cutoff = time.time() - older_than_s
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(folder):
            if not is_temporary_name(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            with contextlib.suppress(FileNotFoundError, PermissionError):
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def current_umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_writer(path) as handle:
        handle.write(data)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def copy_file_atomic(src: Path, dst: Path, chunk_size: int = 1 << 20) -> str:
    """Copy ``src`` to ``dst`` atomically; returns the sha256 of the bytes written."""
    digest = hashlib.sha256()
    with open(src, "rb") as source, atomic_writer(dst) as handle:
        for chunk in iter(lambda: source.read(chunk_size), b""):
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_directory(path: Path, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path`` that becomes ``path`` only if the block finishes.

    Without ``replace`` an existing ``path`` is left alone (FileExistsError). With it, the old folder
    is renamed aside, the new one renamed into place, and only then is the old one removed: a
    reader sees the old folder or the new one, never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = tmp.with_name(tmp.name + ".old")
    try:
        yield tmp
        # mkdtemp creates 0700; give the finished folder the permissions a plain mkdir would.
        os.chmod(tmp, 0o777 & ~current_umask())
        if path.exists() or path.is_symlink():
            if not replace:
                raise FileExistsError(errno.EEXIST, "already exists", str(path))
            os.rename(path, old)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not path.exists():
            os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()
