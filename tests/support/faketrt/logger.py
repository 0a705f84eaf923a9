"""``ILogger``: subclassed by the application; the fakes report through it as TensorRT does."""

from __future__ import annotations

from typing import Any

from tests.support.faketrt.strict import Strict


class ILogger(Strict):
    """Subclass it and implement ``log``; call ``ILogger.__init__(self)``."""

    def __init__(self) -> None:
        pass

    def log(self, severity: Any, msg: str) -> None:
        raise NotImplementedError("ILogger.log must be overridden")


def log(env: Any, logger: Any, severity: str, message: str) -> None:
    """Send ``message`` to the application's logger at ``severity`` (a Severity member name)."""
    logger.log(getattr(env.enum("Severity"), severity), message)
