"""The JSON-friendly record every result dataclass prints itself as, and the JSON text of every record."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from arcface_trt.redact import redact


def json_text(data: Any) -> str:
    """``data`` as indented JSON text with secrets redacted: the one form of every JSON record printed or written."""
    return redact(json.dumps(data, indent=2, default=str)) + "\n"


class Record:
    """Mixin for dataclasses: ``to_dict()`` is the JSON-friendly record (``dataclasses.asdict``)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record."""
        return asdict(self)  # type: ignore[call-overload]
