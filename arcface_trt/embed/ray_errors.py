"""What went wrong on a Ray worker, as one line: the cause carried across Ray's error types.

Ray wraps a worker's exception differently by where it was raised: an actor's ``__init__``
becomes an ``ActorDiedError`` holding a ``RayTaskError`` whose ``cause`` is the original; a Ray
Data task becomes a ``RayTaskError(UserCodeException)`` that keeps the original only as the
remote traceback's text. :func:`ray_failure` finds the cause either way: the project's own
error (rebuilt by its class name from :mod:`arcface_trt.errors`, never by importing a name read
from the text), else the first non-Ray exception line, worded for the user.
"""

from __future__ import annotations

import re

from arcface_trt import errors
from arcface_trt.errors import ArcFaceTrtError, BackendUnavailableError, InputError, RemoteError

#: ``Type: message`` lines of a remote traceback.
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)): (.*)$", re.MULTILINE)
#: The project's error family by qualified name (only these are rebuilt from text).
_OURS: dict[str, type[ArcFaceTrtError]] = {
    f"arcface_trt.errors.{cls.__name__}": cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, ArcFaceTrtError)
}
_ESC = re.compile(r"\x1b\[[0-9;]*m")


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it carries: ``cause`` (Ray's), ``__cause__``, ``__context__``, exception args."""
    found: list[BaseException] = []
    todo = [exc]
    while todo and len(found) < 50:
        current = todo.pop(0)
        if any(current is seen for seen in found):
            continue
        found.append(current)
        carried = [getattr(current, "cause", None), current.__cause__, current.__context__, *current.args]
        todo.extend(c for c in carried if isinstance(c, BaseException))
    return found


def ray_failure(exc: BaseException, local_inputs: bool = False) -> ArcFaceTrtError | None:
    """The user-facing error behind a Ray failure, or None when ``exc`` is not one.

    ``local_inputs``: the run reads local paths (a file missing on a worker then means the
    paths are not on a shared file system).
    """
    chain = _chain(exc)
    for item in chain:
        if isinstance(item, ArcFaceTrtError):
            return item
    names = {type(item).__name__ for item in chain}
    if not any(type(item).__module__.startswith("ray") for item in chain):
        return None
    text = _ESC.sub("", "\n".join(str(item) for item in chain))
    lines = _EXCEPTION_LINE.findall(text)
    for name, message in lines:
        if name in _OURS:
            return _OURS[name](message)
    root = next((f"{name}: {message}" for name, message in lines if not name.startswith("ray.")), None)
    if "ActorDiedError" in names:
        return BackendUnavailableError(
            f"the embedding actor could not start on a Ray worker: {root}"
            if root
            else "an embedding actor died and could not be restarted (its process crashed or was killed "
            "repeatedly): see the Ray logs of its node; --resume continues the run"
        )
    if root and root.startswith("FileNotFoundError") and local_inputs:
        return InputError(
            f"a Ray worker cannot read an input ({root}): local paths must be readable on every node "
            "(a shared file system), or give object-store URIs (s3://...)"
        )
    return RemoteError(f"a Ray worker failed: {root}" if root else f"the Ray run failed: {type(exc).__name__}")
