"""The one door to the ``tensorrt`` module: the lazy module, a collecting logger, capability facts.

TensorRT 10.x and 11.x differ in what they offer. :func:`capabilities` reads what the
installed module HAS (``hasattr(trt.BuilderFlag, "FP16")``), never a version string; the
decisions taken on those facts live in :mod:`arcface_trt.precision.plan`. The version is
only read to name the engine folder (``trt{major}.{minor}``) and to fill the manifest.

Guard convention (checked by the static TensorRT-API test): every ``trt.X`` / ``trt.X.Y``
attribute chain in ``arcface_trt/`` must exist in the recorded 10.16 or 11.4 API; a chain
that exists in only one of them may only be used inside the true branch of an ``if`` /
conditional expression / ``and`` whose test contains ``hasattr(trt.X, "Y")`` (or
``hasattr(trt, "X")``) for that same chain. The module is always bound to the name ``trt``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from arcface_trt.artifacts.key import trt_major_minor
from arcface_trt.errors import BackendUnavailableError
from arcface_trt.lazy import available, lazy_import
from arcface_trt.records import Record

trt = lazy_import("tensorrt")

log = logging.getLogger("arcface_trt.tensorrt")

#: How many TensorRT messages a :class:`TrtLog` keeps (the verbose builder talks a lot).
MAX_MESSAGES = 500


def installed() -> bool:
    """True when ``import tensorrt`` works here (dry runs and diagnostics ask before touching it)."""
    return available("tensorrt")


def version() -> str:
    """Full version of the loaded module, e.g. ``"10.16.1.11"``."""
    value = getattr(trt, "__version__", None)
    if not value:
        raise BackendUnavailableError("the imported 'tensorrt' module has no __version__: not a TensorRT install")
    return str(value)


def major_minor() -> str:
    """``"10.16"`` for TensorRT 10.16.x: the engine folder name part."""
    return trt_major_minor(version())


@dataclass(frozen=True)
class Capabilities(Record):
    """What a TensorRT module offers, found by attribute presence."""

    version: str
    #: ``BuilderFlag.FP16`` exists (10.x): fp16 can be a builder flag on an fp32 network.
    fp16_flag: bool
    #: ``NetworkDefinitionCreationFlag.EXPLICIT_BATCH`` exists (10.x, deprecated, ignored).
    explicit_batch_flag: bool
    #: ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` exists (10.x and 11.x).
    strongly_typed_flag: bool


#: The two API shapes this project is built against, for decisions made without TensorRT (dry runs).
KNOWN_SHAPES = {
    "10.x": Capabilities("10.x", fp16_flag=True, explicit_batch_flag=True, strongly_typed_flag=True),
    "11.x": Capabilities("11.x", fp16_flag=False, explicit_batch_flag=False, strongly_typed_flag=True),
}


def capabilities() -> Capabilities:
    """Detect the 10.x / 11.x differences of the installed module."""
    return Capabilities(
        version=version(),
        fp16_flag=hasattr(trt.BuilderFlag, "FP16"),
        explicit_batch_flag=hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"),
        strongly_typed_flag=hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"),
    )


def _severity_name(severity: Any) -> str:
    name = getattr(severity, "name", None)
    return str(name if name is not None else severity).upper()


_LEVELS = {
    "INTERNAL_ERROR": logging.ERROR,
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "INFO": logging.DEBUG,
    "VERBOSE": logging.DEBUG,
}

#: Application subclasses of TensorRT interfaces, one per (maker, interface class): the tests swap modules.
_subclasses: dict[tuple[Callable[[type], type], type], type] = {}


def subclass_of(base: type, make: Callable[[type], type]) -> type:
    """``make(base)``: an application subclass of the TensorRT interface ``base``, made once per loaded module.

    ``trt.ILogger`` and ``trt.IProgressMonitor`` are implemented in Python by subclassing; the
    class must derive from the loaded module's own base, so it is made when first needed.
    """
    key = (make, base)
    if key not in _subclasses:
        _subclasses[key] = make(base)
    return _subclasses[key]


def _collecting_logger(base: type) -> type:
    """A ``trt.ILogger`` subclass that forwards to a :class:`TrtLog`."""

    class _CollectingILogger(base):  # type: ignore[valid-type,misc]
        def __init__(self, sink: TrtLog) -> None:
            base.__init__(self)
            self._sink = sink

        def log(self, severity: Any, msg: str) -> None:
            self._sink.record(_severity_name(severity), msg)

    return _CollectingILogger


class TrtLog:
    """Collects what TensorRT logs, so a failed build or load can say why.

    ``trt_logger`` is the object handed to ``trt.Builder``, ``trt.OnnxParser`` and
    ``trt.Runtime``. Warnings and errors also go to Python logging; VERBOSE
    messages are dropped.
    """

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []
        self.trt_logger = subclass_of(trt.ILogger, _collecting_logger)(self)

    def record(self, severity: str, message: str) -> None:
        """Keep one message (called by TensorRT through the ILogger)."""
        if severity == "VERBOSE":
            return
        if len(self.messages) < MAX_MESSAGES:
            self.messages.append((severity, message))
        log.log(_LEVELS.get(severity, logging.INFO), "TensorRT %s: %s", severity.lower(), message)

    def errors(self) -> list[str]:
        """ERROR and INTERNAL_ERROR messages, oldest first."""
        return [m for s, m in self.messages if s in ("ERROR", "INTERNAL_ERROR")]

    def summary(self, limit: int = 3) -> str:
        """The last few errors (else warnings) as one line, or a note that TensorRT said nothing."""
        chosen = self.errors() or [m for s, m in self.messages if s == "WARNING"]
        if not chosen:
            return "TensorRT logged no error"
        return " | ".join(" ".join(m.split()) for m in chosen[-limit:])
