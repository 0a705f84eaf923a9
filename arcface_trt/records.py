"""The JSON-friendly record every result dataclass prints itself as."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any


class Record:
    """Mixin for dataclasses: ``to_dict()`` is the JSON-friendly record (``dataclasses.asdict``)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record."""
        return asdict(self)  # type: ignore[call-overload]
