"""The base of every fake class: public attributes exist only if the class declares them."""

from __future__ import annotations

from typing import Any


class Strict:
    """Setting an undeclared public attribute fails, as it does on the pybind11 classes.

    Each fake module's classes are subclasses of these bases with ``_env`` bound to that
    module's :class:`~tests.support.faketrt.env.Env`.
    """

    _env: Any

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            attr = getattr(type(self), name, None)
            if not (isinstance(attr, property) and attr.fset is not None):
                raise AttributeError(
                    f"fake tensorrt: '{type(self).__name__}' object has no settable attribute '{name}'"
                )
        object.__setattr__(self, name, value)
