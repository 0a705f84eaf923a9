"""The one user-error exception family.

Library code raises these; the CLI catches them once, prints the message as one
line on stderr and exits with :attr:`ArcFaceTrtError.exit_code`.
"""

from __future__ import annotations

import reprlib

_SHORT = reprlib.Repr()  # Python 3.11's Repr takes no arguments: limits are attributes
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 3, 60, 60, 40
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none.

    Third-party libraries (ONNX Runtime, its quantizer) raise multi-line messages; the
    CLI's errors are one line.
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def describe(exc: BaseException) -> str:
    """``Type: message`` on one line (for records that keep a probe's failure as text)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def short_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut short for a message: a value read from a file may be huge or deeply nested.

    reprlib stops at a fixed depth and length, so a YAML alias bomb or a megabyte string is
    never expanded in full.
    """
    text = _SHORT.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ArcFaceTrtError(Exception):
    """Base of every error that is the user's to fix (bad input, bad config, missing tool)."""

    exit_code = 2


class ConfigError(ArcFaceTrtError):
    """A configuration file or value is invalid."""


class InputError(ArcFaceTrtError):
    """An input file, model or option value is unusable."""


class BackendUnavailableError(ArcFaceTrtError):
    """A requested backend cannot run here (missing module, no GPU, no engine)."""


class StoreError(ArcFaceTrtError):
    """The engine store (S3) cannot be reached or does not hold what was asked for."""


class CheckFailedError(ArcFaceTrtError):
    """A check ran and failed (for example parity drift above the tolerance)."""

    exit_code = 1


class RemoteError(ArcFaceTrtError):
    """Work on another machine (a Ray worker) failed for a reason that is not the input's (see its logs)."""

    exit_code = 1
