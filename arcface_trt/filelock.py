"""An exclusive advisory file lock (fcntl), so two builds of the same file never interleave."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from arcface_trt.errors import InputError


def _open_lock_file(path: Path) -> int:
    """The lock file's descriptor (created if needed): a regular file, never a link followed."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError:
        if os.path.islink(path):
            raise InputError(f"lock file {path} is a symbolic link; refusing to follow it (remove it)") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(f"lock file {path} is not a regular file; remove it")
    return fd


def _still_linked(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file ``fd`` holds (a holder that removes the file unlinks it first)."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


@contextlib.contextmanager
def file_lock(path: Path, remove: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the duration of the block.

    The lock file is opened with ``O_NOFOLLOW`` and must be a regular file: a symbolic link
    planted in its place is refused, never followed (it would create or lock its target).
    ``remove=True`` deletes the lock file when the block ends (if it is empty, as the lock files
    this makes are: a file with content is someone else's), while still holding the lock; a waiter
    that then gets the lock of the deleted file sees that ``path`` no longer names it and locks
    ``path`` afresh, so two holders never run at once.
    """
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = _open_lock_file(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        if _still_linked(fd, path):
            break
        os.close(fd)  # the holder before us removed the file we waited on: lock the one path names now
    try:
        yield
    finally:
        try:
            if remove and os.fstat(fd).st_size == 0 and _still_linked(fd, path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
