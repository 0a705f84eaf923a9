"""Bounded reads of regular files, the clean-up of stale temporary files, and lock files: never links, removable."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from arcface_trt.errors import InputError
from arcface_trt.fileio import atomic_writer, read_regular_file, remove_stale_temporaries
from arcface_trt.filelock import file_lock


def test_read_regular_file_refuses_everything_else(tmp_path: Path) -> None:
    small = tmp_path / "small.json"
    small.write_bytes(b"x" * 100)
    assert read_regular_file(small, 100, "manifest") == b"x" * 100
    with pytest.raises(InputError, match=r"manifest .* is larger than 99 bytes"):
        read_regular_file(small, 99, "manifest")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    for path, message in (
        (fifo, "is not a regular file"),
        (Path("/dev/zero"), "is not a regular file"),
        (tmp_path, "is a folder"),
        (tmp_path / "missing", "not found"),
    ):
        with pytest.raises(InputError, match=message):
            read_regular_file(path, 1 << 20, "config file")
    assert time.monotonic() - started < 5  # nothing blocked


def test_only_stale_temporaries_of_atomic_writes_are_removed(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_writer(tmp_path / "engine.plan") as handle:
        handle.write(b"half")
        (name,) = [p.name for p in tmp_path.iterdir()]  # the writer's own temporary name
        raise RuntimeError("killed")
    old = time.time() - 7200
    stale = tmp_path / name
    stale.write_bytes(b"left by a killed process")
    fresh = tmp_path / ".engine.plan.abcd1234.tmp"
    fresh.write_bytes(b"being written now")
    others = [tmp_path / "user.tmp", tmp_path / ".engine.plan.tmp", tmp_path / ".notes.abcd1234.tmp.bak"]
    link = tmp_path / ".link.abcd1234.tmp"
    link.symlink_to(tmp_path / "user.tmp")
    for path in others:
        path.write_bytes(b"keep")
    for path in (stale, *others):
        os.utime(path, (old, old))
    os.utime(link, (old, old), follow_symlinks=False)
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert fresh.exists() and link.is_symlink() and all(p.exists() for p in others)


def test_a_lock_file_is_never_followed(tmp_path: Path) -> None:
    lock = tmp_path / "build.lock"
    with file_lock(lock):
        assert lock.is_file()
    target = tmp_path / "elsewhere" / "victim"
    target.parent.mkdir()
    link = tmp_path / "link.lock"
    link.symlink_to(target)
    with pytest.raises(InputError, match="is a symbolic link"), file_lock(link):
        pass
    assert not target.exists()
    fifo = tmp_path / "fifo.lock"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"), file_lock(fifo):
        pass


def test_a_removed_lock_file_goes_when_the_block_ends_and_a_waiter_relocks_the_path(tmp_path: Path) -> None:
    lock = tmp_path / "out.parquet.lock"
    with pytest.raises(RuntimeError), file_lock(lock, remove=True):
        assert lock.is_file()
        raise RuntimeError("the run failed")
    assert not lock.exists()  # gone after a failure too
    lock.write_text("someone's notes")
    with file_lock(lock, remove=True):
        pass
    assert lock.read_text() == "someone's notes"  # a file with content is not a lock file this made
    lock.unlink()

    seen: list[bool] = []

    def waiter() -> None:
        with file_lock(lock):
            # the first holder deleted the file this thread first waited on: it must hold the path's lock now
            seen.append(lock.is_file())

    with file_lock(lock, remove=True):
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.5)  # let the waiter open the lock file and block on it
    thread.join(5)
    assert seen == [True]
    assert lock.exists()  # the waiter's lock (remove=False) stays
