"""Atomic folders and copies: a reader sees the old folder or the new one, never half of one."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from arcface_trt import fileio
from arcface_trt.fileio import atomic_directory, copy_file_atomic


def _old(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "old.txt").write_text("old")
    return folder


def _entries(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


def test_replace_swaps_the_whole_folder(tmp_path: Path) -> None:
    folder = _old(tmp_path)
    with atomic_directory(folder, replace=True) as tmp:
        assert tmp.parent == tmp_path and not folder.joinpath("new.txt").exists()
        (tmp / "new.txt").write_text("new")
    assert _entries(folder) == ["new.txt"] and _entries(tmp_path) == ["model"]
    mask = os.umask(0)
    os.umask(mask)
    assert folder.stat().st_mode & 0o777 == 0o777 & ~mask  # a plain mkdir's mode, not mkdtemp's 0700


def test_an_existing_folder_is_kept_without_replace(tmp_path: Path) -> None:
    folder = _old(tmp_path)
    with pytest.raises(FileExistsError), atomic_directory(folder) as tmp:
        (tmp / "new.txt").write_text("new")
    assert _entries(folder) == ["old.txt"] and _entries(tmp_path) == ["model"]


def test_a_failure_in_the_block_keeps_the_old_folder(tmp_path: Path) -> None:
    folder = _old(tmp_path)
    with pytest.raises(RuntimeError), atomic_directory(folder, replace=True) as tmp:
        (tmp / "new.txt").write_text("half")
        raise RuntimeError("disk full")
    assert _entries(folder) == ["old.txt"] and _entries(tmp_path) == ["model"]


def test_a_failed_final_rename_puts_the_old_folder_back(tmp_path: Path, monkeypatch) -> None:
    folder = _old(tmp_path)
    real_rename = os.rename

    def rename(src, dst):
        if Path(dst) == folder and Path(src).name.endswith(".tmp"):
            raise OSError(5, "Input/output error")
        return real_rename(src, dst)

    monkeypatch.setattr(fileio.os, "rename", rename)
    with pytest.raises(OSError), atomic_directory(folder, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert _entries(folder) == ["old.txt"] and _entries(tmp_path) == ["model"]


def test_copy_returns_the_sha256_of_what_it_wrote(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    (tmp_path / "src.bin").write_bytes(data)
    digest = copy_file_atomic(tmp_path / "src.bin", tmp_path / "out" / "dst.bin")
    assert digest == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "out" / "dst.bin").read_bytes() == data and _entries(tmp_path / "out") == ["dst.bin"]
