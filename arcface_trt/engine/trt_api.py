"""The one door to the ``tensorrt`` module: lazy import, a collecting logger, capability checks.

TensorRT 10.x and 11.x differ in what they offer, and the code picks its path by what
the installed module HAS (``hasattr(trt.BuilderFlag, "FP16")``), never by parsing
version strings. The version is only read to name the engine folder
(``trt{major}.{minor}``) and to fill the manifest.

Guard convention (checked by ``tests/tensorrt/test_trt_static_api.py``): every
``trt.X`` / ``trt.X.Y`` attribute chain in ``arcface_trt/`` must exist in the recorded
10.16 or 11.4 API; a chain that exists in only one of them may only be used inside
the true branch of an ``if`` / conditional expression / ``and`` whose test contains
``hasattr(trt.X, "Y")`` (or ``hasattr(trt, "X")``) for that same chain. The
module is always bound to the name ``trt``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from arcface_trt.errors import BackendUnavailableError

log = logging.getLogger("arcface_trt.tensorrt")

#: How many TensorRT messages a :class:`TrtLog` keeps (the verbose builder talks a lot).
MAX_MESSAGES = 500


def load() -> ModuleType:
    """Import ``tensorrt`` or raise :class:`BackendUnavailableError` with the install hint."""
    from arcface_trt.lazy import require

    return require("tensorrt")


def installed() -> ModuleType | None:
    """The ``tensorrt`` module when importable, else None (for dry runs and diagnostics)."""
    try:
        return load()
    except BackendUnavailableError:
        return None


def version(trt: ModuleType) -> str:
    """Full version of the loaded module, e.g. ``"10.16.1.11"``."""
    value = getattr(trt, "__version__", None)
    if not value:
        raise BackendUnavailableError("the imported 'tensorrt' module has no __version__: not a TensorRT install")
    return str(value)


def major_minor(trt: ModuleType) -> str:
    """``"10.16"`` for TensorRT 10.16.x: the engine folder name part."""
    from arcface_trt.engine.key import trt_major_minor

    return trt_major_minor(version(trt))


@dataclass(frozen=True)
class Capabilities:
    """What the installed TensorRT offers, found by attribute presence."""

    version: str
    #: ``BuilderFlag.FP16`` exists (10.x): fp16 is a builder flag on an fp32 network.
    fp16_flag: bool
    #: ``NetworkDefinitionCreationFlag.EXPLICIT_BATCH`` exists (10.x, deprecated, ignored).
    explicit_batch_flag: bool
    #: ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` exists (10.x and 11.x).
    strongly_typed_flag: bool

    @property
    def fp16_path(self) -> str:
        """How an fp16 engine is made here."""
        return "builder-flag" if self.fp16_flag else "mixed-precision-onnx"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record (dry run, diagnose)."""
        return {
            "version": self.version,
            "fp16_flag": self.fp16_flag,
            "explicit_batch_flag": self.explicit_batch_flag,
            "strongly_typed_flag": self.strongly_typed_flag,
            "fp16_path": self.fp16_path,
        }


def capabilities(trt: ModuleType) -> Capabilities:
    """Detect the 10.x / 11.x differences this project cares about."""
    return Capabilities(
        version=version(trt),
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

_logger_classes: dict[int, type] = {}


def _logger_class(trt: ModuleType) -> type:
    """A ``trt.ILogger`` subclass (made once per loaded module) that forwards to a :class:`TrtLog`."""
    cls = _logger_classes.get(id(trt))
    # id() may be reused by another module object later (tests swap fakes): check the base too.
    if cls is None or cls.__mro__[1] is not trt.ILogger:

        class _CollectingILogger(trt.ILogger):  # type: ignore[name-defined,misc]
            def __init__(self, sink: TrtLog) -> None:
                trt.ILogger.__init__(self)
                self._sink = sink

            def log(self, severity: Any, msg: str) -> None:
                self._sink.record(_severity_name(severity), msg)

        cls = _CollectingILogger
        _logger_classes[id(trt)] = cls
    return cls


class TrtLog:
    """Collects what TensorRT logs, so a failed build or load can say why.

    ``trt_logger`` is the object handed to ``trt.Builder``, ``trt.OnnxParser`` and
    ``trt.Runtime``. Warnings and errors also go to Python logging; VERBOSE
    messages are dropped.
    """

    def __init__(self, trt: ModuleType) -> None:
        self.messages: list[tuple[str, str]] = []
        self.trt_logger = _logger_class(trt)(self)

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
