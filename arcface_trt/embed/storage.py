"""Where an ``embed`` output and its parts folder live: a local folder, or an object store.

:class:`~arcface_trt.embed.parts.PartStore` holds the rules (what is committed, what is
checked on ``--resume``, what is deleted); the two classes here carry them out on their medium.

Local (:class:`LocalStorage`): the parts folder is ``<out>.parts/`` with the marker file in it,
built aside and renamed into place; every file is written to a temporary file and renamed
(after an fsync); ``<out>.lock`` serialises runs (and is deleted when a run ends); a folder is
removed by renaming it aside first, so a half-deleted folder never looks live.

Object store (:class:`ObjectStorage`, ``s3://...``): there is no rename and no lock, but one
PUT is atomic (readers see the whole object or none). The marker object says what state the
parts "folder" (the key prefix ``<out>.parts/``) is in, and is rewritten in one PUT:

- ``arcface-trt-embed/1`` alone: live (the same content as the local marker);
- ``... building``: being set up (the copy of a finished output into part 0 was cut short);
- ``... retired``: merged or replaced, its objects being deleted.

A building or retired folder is cleaned up by the next run: its parts first, the marker last
(only the names the tool writes; other objects stay, with a warning). Parts are built in memory
and written in one PUT. The final output is streamed (it may be large); a merge cut short can
leave an unreadable ``<out>``, but the parts stay live until the merge is complete, so the next
``--resume`` merges again. Two runs on the same object-store output at once are not prevented:
run one at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from arcface_trt.errors import InputError
from arcface_trt.fileio import (
    atomic_writer,
    current_umask,
    is_temporary_name,
    remove_stale_temporaries,
    write_text_atomic,
)
from arcface_trt.filelock import file_lock
from arcface_trt.lazy import lazy_import
from arcface_trt.objectstore import ObjectStore, basename, describe_error, fs_errors, is_uri, join, local_path, parent

log = logging.getLogger("arcface_trt")

pa = lazy_import("pyarrow")
pafs = lazy_import("pyarrow.fs")

FORMAT_TAG = "arcface-trt-embed/1"
#: The file that marks a parts folder as made by this tool.
MARKER = ".arcface-trt-parts"
PART = re.compile(r"part-(\d{6,})\.parquet")
#: Largest marker read (it holds one short line).
_MARKER_BYTES = 4096

#: ``write(handle)``: fills a file being written.
Writer = Callable[[Any], None]


class Storage(Protocol):
    """What the part store needs from the medium its output lives on."""

    out: str
    parts: str

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Serialise runs on this output (where the medium allows)."""

    def check_writable(self) -> None:
        """Refuse, before any work, an output that cannot be written."""

    def is_file(self, location: str) -> bool:
        """True when ``location`` (the output, its index) is a file."""

    def parts_state(self) -> str:
        """``absent``, ``ours`` (a live parts folder this tool made) or ``foreign``."""

    def clean_leftovers(self) -> None:
        """Finish deleting what an interrupted run set aside or left half set up."""

    def drop_temporaries(self) -> None:
        """Delete the temporary file of a part that was being written when a run died."""

    def part_names(self) -> list[str]:
        """Names of the committed parts (``part-NNNNNN.parquet``), in commit order."""

    def part(self, name: str) -> str:
        """The location of one part."""

    def open_input(self, location: str) -> Any:
        """A random-access pyarrow file on ``location``."""

    def create_parts(self, seed: Writer | None) -> None:
        """Make the marked parts folder, with ``seed`` written as ``part-000000``, and put it in place at once."""

    def write_part(self, name: str, write: Writer) -> None:
        """Write one part so that it exists only complete."""

    def write_file(self, location: str) -> contextlib.AbstractContextManager[Any]:
        """A writable file for the output or its index (see the module docstring for what "atomic" means)."""

    def retire_parts(self) -> None:
        """Remove the parts folder: what the tool wrote in it is deleted, anything else is left with a warning."""


def part_name(number: int) -> str:
    """The name of part ``number``."""
    return f"part-{number:06d}.parquet"


def _part_number(name: str) -> int:
    return int(PART.fullmatch(name).group(1))  # type: ignore[union-attr]


def storage_for(out: str | Path, store: ObjectStore) -> Storage:
    """The storage of ``out``: an object store for a URI, else the local file system."""
    text = str(out)
    return ObjectStorage(text, store) if is_uri(text) else LocalStorage(Path(local_path(text)))


# -- local folders --------------------------------------------------------------------------------


def _is_ours(folder: Path) -> bool:
    """True when ``folder`` is a real folder (not a link) holding the marker this tool writes."""
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return False
        marker = folder / MARKER
        return stat.S_ISREG(os.lstat(marker).st_mode) and marker.read_text(encoding="utf-8").startswith(FORMAT_TAG)
    except (OSError, UnicodeDecodeError):
        return False


def _new_parts_folder(parent_dir: Path, name: str) -> Path:
    """A new, uniquely named folder with the marker in it (``name`` and 8 random characters)."""
    folder = Path(tempfile.mkdtemp(prefix=name, dir=parent_dir))
    os.chmod(folder, 0o777 & ~current_umask())  # mkdtemp makes 0700; give it what a plain mkdir would
    write_text_atomic(folder / MARKER, f"{FORMAT_TAG}\n")
    return folder


def _delete_ours(folder: Path) -> None:
    """Delete what this tool wrote in a marked folder (parts, marker, temporary files), then the folder if empty.

    Anything else in it is left, with the folder and a warning: the tool never deletes what it did not write.
    The marker goes last, so a deletion cut short is finished by the next run.
    """
    for entry in os.scandir(folder):
        ours = PART.fullmatch(entry.name) or is_temporary_name(entry.name)
        if ours and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
    (folder / MARKER).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        log.warning("left %s in place: it holds files arcface-trt did not write", folder)


class LocalStorage:
    """An output on the local file system (see the module docstring)."""

    def __init__(self, out: Path) -> None:
        self.out_path = out
        self.parts_path = out.with_name(out.name + ".parts")
        self.out = str(out)
        self.parts = str(self.parts_path)

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """``<out>.lock``, held for the whole run and deleted when it ends."""
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        return file_lock(self.out_path.with_name(self.out_path.name + ".lock"), remove=True)

    def check_writable(self) -> None:
        """The output's folder (or the nearest existing folder above it) must be a writable folder."""
        folder = self.out_path.parent.absolute()
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(f"cannot write {self.out}: {folder} is not a writable folder")

    def is_file(self, location: str) -> bool:
        """A regular file (through links)."""
        return Path(location).is_file()

    def parts_state(self) -> str:
        """By the marker file in a real folder (a link is never ours)."""
        if not os.path.lexists(self.parts_path):
            return "absent"
        return "ours" if _is_ours(self.parts_path) else "foreign"

    def _aside(self) -> re.Pattern[str]:
        """Names of the folders set aside beside the parts folder: ``<parts>.new-*`` and ``<parts>.old-*``."""
        return re.compile(re.escape(self.parts_path.name) + r"\.(?:new|old)-[a-z0-9_]{8}")

    def clean_leftovers(self) -> None:
        """Delete what the tool wrote in marked folders it set aside (an interrupted clean-up or copy)."""
        aside = self._aside()
        for entry in self.parts_path.parent.iterdir():
            if aside.fullmatch(entry.name) and _is_ours(entry):
                _delete_ours(entry)

    def drop_temporaries(self) -> None:
        """This run holds the output's lock: any temporary file in the parts folder is a dead writer's."""
        remove_stale_temporaries(self.parts_path, older_than_s=0)

    def part_names(self) -> list[str]:
        """Committed parts in commit order."""
        return sorted((p.name for p in self.parts_path.iterdir() if PART.fullmatch(p.name)), key=_part_number)

    def part(self, name: str) -> str:
        """``<parts>/<name>``."""
        return str(self.parts_path / name)

    def open_input(self, location: str) -> Any:
        """pyarrow's local random-access file."""
        with fs_errors("read", location):
            return pafs.LocalFileSystem().open_input_file(location)

    def create_parts(self, seed: Writer | None) -> None:
        """Built aside (``<parts>.new-*``), renamed into place in one step."""
        building = _new_parts_folder(self.parts_path.parent, f"{self.parts_path.name}.new-")
        if seed is not None:
            with atomic_writer(building / part_name(0)) as handle:
                seed(handle)
        os.replace(building, self.parts_path)

    def write_part(self, name: str, write: Writer) -> None:
        """A temporary file renamed into place."""
        with atomic_writer(self.parts_path / name) as handle:
            write(handle)

    def write_file(self, location: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A temporary file renamed into place when the block ends without error."""
        return atomic_writer(Path(location))

    def retire_parts(self) -> None:
        """Rename the folder aside (one atomic step), then delete what the tool wrote in it.

        A half-deleted folder never looks live; an interrupted deletion leaves a ``.old-*`` folder
        that the next run on this output finishes deleting.
        """
        trash = Path(tempfile.mkdtemp(prefix=f"{self.parts_path.name}.old-", dir=self.parts_path.parent))
        os.replace(self.parts_path, trash)  # over the empty folder mkdtemp made
        _delete_ours(trash)


# -- object stores --------------------------------------------------------------------------------


class ObjectStorage:
    """An output in an object store (see the module docstring)."""

    def __init__(self, out: str, store: ObjectStore) -> None:
        self.store = store
        self.out = out
        self.parts = out + ".parts"
        self.marker = join(self.parts, MARKER)

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Object stores have no lock: one run per output at a time is the user's rule."""
        return contextlib.nullcontext()

    def check_writable(self) -> None:
        """Write a small object beside the output and delete it: a missing bucket or a denied write shows now."""
        probe = join(parent(self.out), f".{basename(self.out)}.{secrets.token_hex(4)}.write-check")
        try:
            self.store.write_bytes(probe, b"")
        except InputError as exc:
            raise InputError(f"cannot write {self.out}: {exc}") from None
        try:
            self.store.delete(probe)
        except InputError as exc:
            log.warning("could not delete the write check %s: %s", probe, exc)

    def is_file(self, location: str) -> bool:
        """An object."""
        return self.store.is_file(location)

    def _marker_state(self) -> str | None:
        """``live``, ``building`` or ``retired`` from the marker object; None when there is none (or not ours)."""
        if not self.store.is_file(self.marker):
            return None
        try:
            words = self.store.read_bytes(self.marker, _MARKER_BYTES).decode("utf-8").split()
        except (InputError, UnicodeDecodeError):
            return None
        if not words or words[0] != FORMAT_TAG:
            return None
        return words[1] if len(words) > 1 and words[1] in ("building", "retired") else "live"

    def _set_marker(self, state: str) -> None:
        self.store.write_bytes(self.marker, f"{FORMAT_TAG}{'' if state == 'live' else ' ' + state}\n".encode())

    def parts_state(self) -> str:
        """By the marker object; objects under the prefix without it are someone else's."""
        state = self._marker_state()
        if state == "live":
            return "ours"
        if state is None and self.store.list_files(self.parts):
            return "foreign"
        return "absent"  # nothing there, or a building/retired folder the next clean-up removes

    def clean_leftovers(self) -> None:
        """Delete a building or retired parts folder's objects (ours only; the marker last)."""
        if self._marker_state() in ("building", "retired"):
            self._delete_ours()

    def drop_temporaries(self) -> None:
        """Nothing to do: a part is written in one PUT, so a dead writer leaves nothing."""

    def part_names(self) -> list[str]:
        """Committed parts in commit order."""
        names = [basename(uri) for uri, _ in self.store.list_files(self.parts)]
        return sorted((n for n in names if PART.fullmatch(n)), key=_part_number)

    def part(self, name: str) -> str:
        """``<parts>/<name>``."""
        return join(self.parts, name)

    def open_input(self, location: str) -> Any:
        """pyarrow's random-access file on the object."""
        remote = self.store.resolve(location)
        with self.store.errors("read", location):
            return remote.fs.open_input_file(remote.path)

    def create_parts(self, seed: Writer | None) -> None:
        """Marker first (``building`` while a seed is copied), live once part 0 is complete."""
        if seed is not None:
            self._set_marker("building")
            self.write_part(part_name(0), seed)
        self._set_marker("live")

    def write_part(self, name: str, write: Writer) -> None:
        """Built in memory, then one PUT."""
        buffer = pa.BufferOutputStream()
        write(buffer)
        self.store.write_bytes(self.part(name), buffer.getvalue().to_pybytes())

    @contextlib.contextmanager
    def write_file(self, location: str) -> Iterator[Any]:
        """A streamed upload (multipart for a large output); pyarrow offers no abort, so it is closed either way."""
        remote = self.store.resolve(location)
        with self.store.errors("write", location):
            handle = remote.fs.open_output_stream(remote.path)
        finished = False
        try:
            yield handle
            finished = True
        finally:
            try:
                handle.close()
            except (OSError, ValueError) as exc:
                if finished:  # else the block's own error is the one to report
                    raise InputError(describe_error(exc, "write", location, self.store.endpoint.label)) from None

    def retire_parts(self) -> None:
        """Marked retired in one PUT (never live again), then its objects deleted, the marker last."""
        self._set_marker("retired")
        self._delete_ours()

    def _delete_ours(self) -> None:
        others = []
        for uri, _ in self.store.list_files(self.parts):
            name = basename(uri)
            if parent(uri) == self.parts and PART.fullmatch(name):
                self.store.delete(uri)
            elif uri != self.marker:
                others.append(uri)
        self.store.delete(self.marker)
        if others:
            log.warning("left %s in place: it holds objects arcface-trt did not write", self.parts)
